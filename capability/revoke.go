package capability

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/tokfence/tokfence/keystore/durable"
)

const (
	// revocationsVersion is the file format version; any other is refused.
	revocationsVersion = 1
	// maxRevocationsFile bounds what OpenRevocations reads. Entries are pruned
	// once their tokens are dead, so a real file holds at most the kills of a
	// day or so (about 100 bytes each); 64 MiB is a file that is not ours.
	maxRevocationsFile = 64 << 20
)

// Revocations is the persisted list of killed sessions and tokens, plus the
// epoch below which every token is dead. It is keyed on sid, jti and epoch,
// never on token bytes, so a token cannot dodge it by being spelled
// differently. It is safe for concurrent use; Revoked never waits for disk.
type Revocations struct {
	path   string
	clock  func() time.Time
	anchor Anchor
	digest string // of the file on disk, as anchored

	// writeMu serialises changes end to end (mutate, snapshot, persist), so
	// the file always holds the latest state and writes never interleave.
	writeMu sync.Mutex

	mu       sync.RWMutex // guards the fields below
	epoch    uint64
	sessions map[string]time.Time // sid -> until
	tokens   map[string]time.Time // jti -> until
}

// revocationsFile is the on-disk form of Revocations.
type revocationsFile struct {
	Version  int                  `json:"version"`
	Epoch    uint64               `json:"epoch"`
	Sessions map[string]time.Time `json:"sessions"`
	Tokens   map[string]time.Time `json:"tokens"`
}

// Anchor keeps, where an agent that can rewrite the state directory
// cannot (the OS keychain), what the revocation list on disk may be: the
// digests of the file that may be there, and the epoch. Without it,
// deleting revocations.json (or putting back an older copy) would revive
// every killed token at the next start.
type Anchor interface {
	// Load returns the anchored state; ok is false when none was ever
	// stored.
	Load() (a AnchorState, ok bool, err error)
	Store(a AnchorState) error
}

// AnchorState is what an Anchor holds.
type AnchorState struct {
	// Digests are the SHA-256 (hex) of the files that may be on disk:
	// one, or two while a write is under way (a crash between the
	// anchor's update and the rename leaves either).
	Digests []string `json:"digests"`
	Epoch   uint64   `json:"epoch"`
}

// ErrAnchorMismatch is returned by OpenAnchoredRevocations when the file
// on disk is none of the ones its anchor allows: it was deleted, replaced
// or rolled back behind the daemon's back.
var ErrAnchorMismatch = errors.New("the revocation list does not match its anchor in the keychain")

// absentDigest stands for "no file": a fresh install's anchor holds it.
const absentDigest = "absent"

func fileDigest(data []byte, exists bool) string {
	if !exists {
		return absentDigest
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// OpenAnchoredRevocations is OpenRevocations checked against anchor: the
// file must be one the anchor allows (ErrAnchorMismatch otherwise), and
// every later write is anchored before and after it lands. An anchor that
// holds nothing yet (a first start) is filled from the file as it is.
// With reset, a list that fails the check is replaced by an empty one
// whose epoch is past the anchored one, so that every token minted before
// is dead: the one safe way to start again after a list was lost.
func OpenAnchoredRevocations(path string, clock func() time.Time, anchor Anchor, reset bool) (*Revocations, error) {
	data, err := readRegular(path)
	exists := err == nil
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("open revocations %s: %w", path, err)
	}
	st, ok, err := anchor.Load()
	if err != nil {
		return nil, fmt.Errorf("open revocations: read anchor: %w", err)
	}
	digest := fileDigest(data, exists)
	if ok && !slices.Contains(st.Digests, digest) {
		if !reset {
			return nil, fmt.Errorf("open revocations %s: %w (the file was deleted, replaced or rolled back)", path, ErrAnchorMismatch)
		}
		r := newRevocations(path, clock)
		r.anchor, r.digest = anchor, st.Digests[len(st.Digests)-1]
		r.epoch = st.Epoch + 1
		if err := r.update(func() {}); err != nil {
			return nil, fmt.Errorf("reset revocations: %w", err)
		}
		return r, nil
	}
	r, err := OpenRevocations(path, clock)
	if err != nil {
		return nil, err
	}
	if ok && st.Epoch > r.epoch {
		return nil, fmt.Errorf("open revocations %s: epoch %d below the anchored %d: %w", path, r.epoch, st.Epoch, ErrAnchorMismatch)
	}
	r.anchor, r.digest = anchor, digest
	if !ok || len(st.Digests) != 1 {
		// First start, or a crash mid-write: anchor what is on disk.
		if err := anchor.Store(AnchorState{Digests: []string{digest}, Epoch: r.epoch}); err != nil {
			return nil, fmt.Errorf("open revocations: store anchor: %w", err)
		}
	}
	return r, nil
}

func newRevocations(path string, clock func() time.Time) *Revocations {
	if clock == nil {
		clock = time.Now
	}
	return &Revocations{path: path, clock: clock, sessions: make(map[string]time.Time), tokens: make(map[string]time.Time)}
}

// OpenRevocations loads the revocation list at path. A missing file is an
// empty list. A file that cannot be read or decoded, holds an unknown version
// or a malformed entry, or is not a regular file is an error: the daemon must
// not start having forgotten its kills. clock nil means time.Now.
func OpenRevocations(path string, clock func() time.Time) (*Revocations, error) {
	r := newRevocations(path, clock)
	clock = r.clock
	data, err := readRegular(path)
	if errors.Is(err, fs.ErrNotExist) {
		return r, nil
	}
	if err != nil {
		return nil, fmt.Errorf("open revocations %s: %w", path, err)
	}
	if err := r.decode(data); err != nil {
		return nil, fmt.Errorf("open revocations %s: corrupt: %w", path, err)
	}
	r.digest = fileDigest(data, true)
	r.pruneLocked(clock())
	return r, nil
}

// readRegular reads path, refusing symlinks, non-regular files and files over
// maxRevocationsFile.
func readRegular(path string) ([]byte, error) {
	fi, err := os.Lstat(path)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("not a regular file (mode %v)", fi.Mode())
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxRevocationsFile+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxRevocationsFile {
		return nil, fmt.Errorf("larger than %d bytes", maxRevocationsFile)
	}
	return data, nil
}

func (r *Revocations) decode(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var f revocationsFile
	if err := dec.Decode(&f); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("trailing data")
	}
	if f.Version != revocationsVersion {
		return fmt.Errorf("version %d, want %d", f.Version, revocationsVersion)
	}
	for kind, m := range map[string]map[string]time.Time{"session": f.Sessions, "token": f.Tokens} {
		for id, until := range m {
			if !idRE.MatchString(id) || until.IsZero() {
				return fmt.Errorf("bad %s entry %q", kind, id)
			}
		}
	}
	r.epoch = f.Epoch
	if f.Sessions != nil {
		r.sessions = f.Sessions
	}
	if f.Tokens != nil {
		r.tokens = f.Tokens
	}
	return nil
}

// Epoch returns the current epoch. Tokens stamped with a lower one are dead.
func (r *Revocations) Epoch() uint64 {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.epoch
}

// Revoked returns nil if c's session, token and epoch are all live, and an
// error wrapping ErrRevoked otherwise.
func (r *Revocations) Revoked(c *Claims) error {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if c.Epoch < r.epoch {
		return fmt.Errorf("epoch %d below %d: %w", c.Epoch, r.epoch, ErrRevoked)
	}
	if _, ok := r.sessions[c.SID]; ok {
		return fmt.Errorf("session killed: %w", ErrRevoked)
	}
	if _, ok := r.tokens[c.ID]; ok {
		return fmt.Errorf("token %s killed: %w", c.ID, ErrRevoked)
	}
	return nil
}

// RevokeSession kills every token of session sid. until must be no earlier
// than the latest exp of any of its tokens (Session.Expires, or
// Authority.LatestExpiry to be safe): the entry is pruned after it. The kill
// is in force in memory at once, and on disk when RevokeSession returns nil.
// On a write error it stays in force in memory, but may not survive a restart.
func (r *Revocations) RevokeSession(sid string, until time.Time) error {
	if err := r.revoke(r.sessions, sid, until); err != nil {
		return fmt.Errorf("revoke session %s: %w", sid, err)
	}
	return nil
}

// RevokeToken kills the single token jti; until is as for RevokeSession.
func (r *Revocations) RevokeToken(jti string, until time.Time) error {
	if err := r.revoke(r.tokens, jti, until); err != nil {
		return fmt.Errorf("revoke token %s: %w", jti, err)
	}
	return nil
}

func (r *Revocations) revoke(m map[string]time.Time, id string, until time.Time) error {
	if !idRE.MatchString(id) {
		return errors.New("id is not 32 lowercase hex digits")
	}
	if until.IsZero() {
		return errors.New("zero until")
	}
	return r.update(func() {
		if old, ok := m[id]; !ok || until.After(old) {
			m[id] = until.UTC()
		}
	})
}

// BumpEpoch kills every token minted so far (kill --all) and returns the new
// epoch, which Mint stamps on tokens from now on.
func (r *Revocations) BumpEpoch() (uint64, error) {
	var epoch uint64
	err := r.update(func() {
		r.epoch++
		epoch = r.epoch
	})
	if err != nil {
		return epoch, fmt.Errorf("bump epoch: %w", err)
	}
	return epoch, nil
}

// Prune drops entries whose tokens are dead anyway and persists the result.
func (r *Revocations) Prune() error {
	if err := r.update(func() {}); err != nil {
		return fmt.Errorf("prune revocations: %w", err)
	}
	return nil
}

// Len returns the number of session and token entries held.
func (r *Revocations) Len() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return len(r.sessions) + len(r.tokens)
}

// update applies change and prunes under the lock, then persists a snapshot.
func (r *Revocations) update(change func()) error {
	r.writeMu.Lock()
	defer r.writeMu.Unlock()
	r.mu.Lock()
	change()
	r.pruneLocked(r.clock())
	data, err := json.MarshalIndent(revocationsFile{
		Version:  revocationsVersion,
		Epoch:    r.epoch,
		Sessions: r.sessions,
		Tokens:   r.tokens,
	}, "", "\t")
	epoch := r.epoch
	r.mu.Unlock()
	if err != nil {
		return err
	}
	data = append(data, '\n')
	next := fileDigest(data, true)
	if next == r.digest {
		return nil // a prune that removed nothing: the file is this already
	}
	if r.anchor == nil {
		if err := durable.WriteFile(r.path, data, 0o600); err != nil {
			return err
		}
		r.digest = next
		return nil
	}
	// Anchor both files while the rename may or may not happen, then the
	// new one alone: a crash anywhere leaves a file the anchor allows, and
	// no older file is allowed once the write is done.
	if err := r.anchor.Store(AnchorState{Digests: []string{r.digest, next}, Epoch: epoch}); err != nil {
		return fmt.Errorf("anchor: %w", err)
	}
	if err := durable.WriteFile(r.path, data, 0o600); err != nil {
		return err
	}
	r.digest = next
	if err := r.anchor.Store(AnchorState{Digests: []string{next}, Epoch: epoch}); err != nil {
		return fmt.Errorf("anchor: %w", err)
	}
	return nil
}

// pruneLocked drops entries whose until, plus the verification leeway, has
// passed: every token they covered is expired.
func (r *Revocations) pruneLocked(now time.Time) {
	for _, m := range []map[string]time.Time{r.sessions, r.tokens} {
		for id, until := range m {
			if now.After(until.Add(leeway)) {
				delete(m, id)
			}
		}
	}
}
