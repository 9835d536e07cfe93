package daemon

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"regexp"
	"strings"

	"github.com/tokfence/tokfence/capability"
	"github.com/tokfence/tokfence/daemon/hint"
	"github.com/tokfence/tokfence/daemon/layout"
	"github.com/tokfence/tokfence/keystore"
	"github.com/tokfence/tokfence/keystore/durable"
)

// Names of the daemon-internal secrets in the keychain.
const (
	signingKeyName     = "signing-key"     // Ed25519 seed that signs capability tokens
	fingerprintKeyName = "fingerprint-key" // HMAC key naming secrets in audit records
	revocationsAnchor  = "revocations"     // what revocations.json may be (capability.Anchor)
)

var installIDRE = regexp.MustCompile(`^[0-9a-f]{32}$`)

// loadInstallID reads the per-install id (the aud of every token) from the
// state dir, creating it on first start. It is not secret: it only makes
// another install's tokens fail verification here.
func loadInstallID(stateDir string) (string, error) {
	p := layout.StateDir(stateDir).InstallID()
	b, err := os.ReadFile(p)
	if err == nil {
		id := strings.TrimSpace(string(b))
		if !installIDRE.MatchString(id) {
			return "", fmt.Errorf("install id in %s is corrupt; remove it to start over (all tokens become invalid)", p)
		}
		return id, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("read install id: %w", err)
	}
	raw := make([]byte, 16)
	if _, err := rand.Read(raw); err != nil {
		return "", err
	}
	id := hex.EncodeToString(raw)
	if err := durable.WriteFile(p, []byte(id+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write install id: %w", err)
	}
	return id, nil
}

// loadInternalSecret returns the internal secret name, generating n random
// bytes and storing them in the keychain on first start. Values are kept
// base64-encoded because keychains store strings.
func loadInternalSecret(ctx context.Context, ks *keystore.Store, name string, n int) ([]byte, error) {
	s, err := ks.Internal(ctx, name)
	if err == nil {
		b, derr := base64.StdEncoding.Strict().DecodeString(string(s.Reveal()))
		if derr != nil || len(b) != n {
			return nil, fmt.Errorf("internal secret %q in the keychain is corrupt (want %d bytes)", name, n)
		}
		return b, nil
	}
	if !errors.Is(err, keystore.ErrNotFound) {
		return nil, fmt.Errorf("load %s: %w", name, err)
	}
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	enc := keystore.NewSecret([]byte(base64.StdEncoding.EncodeToString(b)))
	if err := ks.SetInternal(ctx, name, enc); err != nil {
		return nil, fmt.Errorf("store new %s: %w", name, err)
	}
	return b, nil
}

// setupCapabilities loads the signing key, install id and revocation list
// and builds the token authority and session registry. A corrupt
// revocation list stops the daemon: starting without it would revive
// killed sessions.
func (d *Daemon) setupCapabilities(ctx context.Context) error {
	id, err := loadInstallID(d.cfg.StateDir)
	if err != nil {
		return err
	}
	seed, err := loadInternalSecret(ctx, d.keys, signingKeyName, ed25519.SeedSize)
	if err != nil {
		return err
	}
	fp, err := loadInternalSecret(ctx, d.keys, fingerprintKeyName, 32)
	if err != nil {
		return err
	}
	d.fpKey = fp
	revs, err := capability.OpenAnchoredRevocations(layout.StateDir(d.cfg.StateDir).Revocations(), d.clock,
		keychainAnchor{ks: d.keys, ctx: ctx}, d.cfg.ResetRevocations)
	if errors.Is(err, capability.ErrAnchorMismatch) {
		return hint.Wrapf(fmt.Errorf("revocation list: %w (refusing to start: it would revive killed sessions)", err),
			"if you did not expect this, something rewrote %s: look at what ran as you; "+
				"`tokfence daemon --reset-revocations` starts a new list that kills every token minted so far", d.cfg.StateDir)
	}
	if err != nil {
		return fmt.Errorf("revocation list: %w (refusing to start: a lost list would revive killed sessions)", err)
	}
	if d.cfg.ResetRevocations {
		d.log.Warn("revocation list reset on request: every token minted before is dead", "epoch", revs.Epoch())
	}
	auth, err := capability.NewAuthority(ed25519.NewKeyFromSeed(seed), id, d.clock, d.cfg.MaxTTL.Duration)
	if err != nil {
		return err
	}
	auth.SetRevocations(revs)
	reg := capability.NewRegistry(d.clock)
	reg.SetRevocations(revs)
	d.auth, d.revs, d.sessions = auth, revs, reg
	return nil
}

// keychainAnchor keeps the revocation list's anchor as an internal secret
// in the keychain, beside the signing key, out of a fenced agent's reach.
type keychainAnchor struct {
	ks  *keystore.Store
	ctx context.Context
}

func (a keychainAnchor) Load() (capability.AnchorState, bool, error) {
	var st capability.AnchorState
	v, err := a.ks.Internal(a.ctx, revocationsAnchor)
	if errors.Is(err, keystore.ErrNotFound) {
		return st, false, nil
	}
	if err != nil {
		return st, false, err
	}
	if err := json.Unmarshal(v.Reveal(), &st); err != nil || len(st.Digests) == 0 {
		return st, false, fmt.Errorf("the keychain's %q entry is corrupt", revocationsAnchor)
	}
	return st, true, nil
}

func (a keychainAnchor) Store(st capability.AnchorState) error {
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	// Writes happen on kills, long after start: each gets its own deadline
	// (the store's), not the start-up context's.
	return a.ks.SetInternal(context.WithoutCancel(a.ctx), revocationsAnchor, keystore.NewSecret(b))
}
