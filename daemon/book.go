package daemon

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/tokfence/tokfence/capability"
	"github.com/tokfence/tokfence/keystore"
	"github.com/tokfence/tokfence/sensor"
)

// secretBook is every exact secret the sensors look for: the stored
// provider keys, the live capability tokens and the session canaries. It
// keeps, by name, what the matcher holds, and changes the matcher in
// place (sensor.Matcher.Put, Delete): a change costs the secrets it adds
// or removes, whatever else the book holds. A session's token and canaries
// leave the book when the session is killed or expires.
type secretBook struct {
	mu        sync.Mutex
	m         *sensor.Matcher            // created by the first change
	entries   map[string]bookEntry       // by "key:NAME", "tok:JTI", "canary:SID:ENV"
	bySession map[string]map[string]bool // entry names by session, so a kill costs its own entries
}

type bookEntry struct {
	secret  sensor.Secret
	expires time.Time // zero: until removed
	session string
}

// redactClass reports whether hits of a class are cut out of forwarded
// bytes: our own secrets never pass, whatever the policy does next.
func redactClass(h sensor.Hit) bool {
	return h.Class == sensor.ClassProviderKey || h.Class == sensor.ClassToken || h.Class == sensor.ClassCanary
}

// bookSet adds or replaces entries and, with a removePrefix, drops the
// entries under it that add does not name. Streams started after it
// returns look for what it added; none looks for what it dropped.
func (d *Daemon) bookSet(add map[string]bookEntry, removePrefix string) {
	b := &d.book
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.m == nil {
		m, err := sensor.NewMatcher(nil, sensor.Options{FormatRules: true, FingerprintKey: d.fpKey, Redact: redactClass})
		if err != nil {
			d.log.Error("build sensors", "err", err)
			return
		}
		b.m, b.entries, b.bySession = m, map[string]bookEntry{}, map[string]map[string]bool{}
	}
	if removePrefix != "" {
		for k := range b.entries {
			if _, keep := add[k]; !keep && strings.HasPrefix(k, removePrefix) {
				b.dropLocked(k)
			}
		}
	}
	for k, e := range add {
		if old, ok := b.entries[k]; ok && bytes.Equal(old.secret.Value, e.secret.Value) && old.secret.ID == e.secret.ID {
			b.entries[k] = e // unchanged: the matcher has it already
			continue
		}
		if err := b.m.Put(k, e.secret); err != nil {
			d.log.Error("add a secret to the sensors", "secret", k, "err", err)
			continue
		}
		b.entries[k] = e
		if e.session != "" {
			if b.bySession[e.session] == nil {
				b.bySession[e.session] = map[string]bool{}
			}
			b.bySession[e.session][k] = true
		}
	}
	d.sensors.Store(b.m) // the same matcher from the first change on
}

func (b *secretBook) dropLocked(k string) {
	if sid := b.entries[k].session; sid != "" {
		if delete(b.bySession[sid], k); len(b.bySession[sid]) == 0 {
			delete(b.bySession, sid)
		}
	}
	delete(b.entries, k)
	b.m.Delete(k)
}

// dropSession takes the entries of session sid (its tokens and canaries)
// out of the book: it was killed or has expired, and its token is dead.
func (b *secretBook) dropSession(sid string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for k := range b.bySession[sid] {
		b.dropLocked(k)
	}
}

// sweep drops the entries that have expired and those of sessions that
// are no longer live (killed, or expired and pruned: live reports which
// are live, and is asked only about sessions the book holds, each after
// it entered the registry). It returns how many it dropped.
func (b *secretBook) sweep(now time.Time, live func(sid string) bool) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for k, e := range b.entries {
		if !e.expires.IsZero() && now.After(e.expires) || e.session != "" && !live(e.session) {
			b.dropLocked(k)
			n++
		}
	}
	return n
}

// hasToken reports whether the book already holds token jti.
func (d *Daemon) hasToken(jti string) bool {
	d.book.mu.Lock()
	defer d.book.mu.Unlock()
	_, ok := d.book.entries["tok:"+jti]
	return ok
}

// loadKeySecrets puts every stored provider key into the book. It runs at
// start and whenever the key index changes.
func (d *Daemon) loadKeySecrets(ctx context.Context) error {
	entries, _, err := d.keys.Index().List()
	if err != nil {
		return err
	}
	add := map[string]bookEntry{}
	for _, e := range entries {
		k, err := d.keys.ProviderKey(ctx, e.Provider)
		if errors.Is(err, keystore.ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		if k.Len() >= sensor.MinSecretLen {
			add["key:"+e.Provider] = bookEntry{secret: sensor.Secret{ID: e.Provider, Class: sensor.ClassProviderKey, Value: k.Reveal()}}
			for i, frag := range keyFragments(k.Reveal()) {
				add[fmt.Sprintf("key:%s#%d", e.Provider, i)] = bookEntry{secret: sensor.Secret{ID: e.Provider + " (fragment)", Class: sensor.ClassProviderKey, Value: frag}}
			}
		}
	}
	d.bookSet(add, "key:")
	return nil
}

// Fragments of a held key are held too, so that an upstream quoting most
// of it ("Incorrect API key provided: sk-abc…" with 46 of its 50
// characters) does not hand the agent all but a guessable rest. A key is
// cut, past its first fragmentSkip bytes (where the public prefixes such
// as sk-ant-api03- are, which every key shares), into fragmentLen-byte
// pieces: any fragmentLen*2-1 consecutive characters of the rest hold one
// whole piece, are caught and cut out, and the session is RED. A real
// provider's masked echo (sk-proj-…abcd: a prefix and four characters)
// holds no piece.
const (
	fragmentSkip = 16
	fragmentLen  = 12
)

// keyFragments returns key's pieces (see fragmentLen); none for a key
// too short to have a rest worth cutting.
func keyFragments(key []byte) [][]byte {
	var out [][]byte
	for i := fragmentSkip; i+fragmentLen <= len(key); i += fragmentLen {
		out = append(out, key[i:i+fragmentLen])
	}
	if len(out) < 2 {
		return nil // the whole key is what matters, and it is held
	}
	return out
}

// registerSession puts the session's token and canaries in the sensor
// book, so that any sighting of them in a body is caught. They stay while
// the session lives: killSession and housekeep take them out when it is
// killed or expires (a token, too, once it has expired: a renewed session
// has a newer one). A canary is not watched for past its session's end:
// by then the session can no longer be revoked for it, and keeping every
// dead session's decoys made the book grow with every grant.
func (d *Daemon) registerSession(token string, c *capability.Claims, canaries map[string]string) {
	// A token is watched for by its signature: it is unique to the token,
	// a token is useless without it, and at 86 characters it keeps the
	// book small where whole tokens (~600 bytes, ~1200 in hex) would not.
	sig := token[strings.LastIndexByte(token, '.')+1:]
	add := map[string]bookEntry{
		"tok:" + c.ID: {secret: sensor.Secret{ID: c.ID, Class: sensor.ClassToken, Value: []byte(sig)},
			expires: c.ExpiresAt.Time.Add(time.Minute), session: c.SID},
	}
	for name, v := range canaries {
		add["canary:"+c.SID+":"+name] = bookEntry{secret: sensor.Secret{ID: c.SID + ":" + name, Class: sensor.ClassCanary, Value: []byte(v)},
			session: c.SID}
	}
	d.bookSet(add, "")
}
