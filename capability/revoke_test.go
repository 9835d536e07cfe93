package capability

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestRevokeSession(t *testing.T) {
	fx := newFixture(t)
	tokA, cA := fx.mint(t, "coder")
	tokB, _ := fx.mint(t, "coder")
	if _, err := fx.a.Verify(tokA); err != nil { // cached before the kill
		t.Fatal(err)
	}
	if err := fx.r.RevokeSession(cA.SID, cA.ExpiresAt.Time); err != nil {
		t.Fatalf("RevokeSession: %v", err)
	}
	if _, err := fx.a.Verify(tokA); !errors.Is(err, ErrRevoked) {
		t.Fatalf("Verify(killed, cached) = %v, want %v", err, ErrRevoked)
	}
	if _, err := fx.a.Verify(tokB); err != nil {
		t.Fatalf("Verify(other session) = %v, want nil", err)
	}
	fx.reopen(t) // simulated restart
	if _, err := fx.a.Verify(tokA); !errors.Is(err, ErrRevoked) {
		t.Fatalf("Verify(killed) after restart = %v, want %v", err, ErrRevoked)
	}
	if _, err := fx.a.Verify(tokB); err != nil {
		t.Fatalf("Verify(other session) after restart = %v, want nil", err)
	}
	if _, _, err := fx.a.Renew(cA.SID, "coder", testScope, cA.SessionStart(), 0); !errors.Is(err, ErrRevoked) {
		t.Fatalf("Renew(killed) = %v, want %v", err, ErrRevoked)
	}
}

func TestRevokeToken(t *testing.T) {
	fx := newFixture(t)
	tok1, c1 := fx.mint(t, "coder")
	tok2, c2, err := fx.a.Renew(c1.SID, "coder", testScope, c1.SessionStart(), time.Hour)
	if err != nil || c2.SID != c1.SID || c2.ID == c1.ID {
		t.Fatalf("Renew = %+v, %v, want same sid, new jti", c2, err)
	}
	if err := fx.r.RevokeToken(c1.ID, c1.ExpiresAt.Time); err != nil {
		t.Fatalf("RevokeToken: %v", err)
	}
	fx.reopen(t)
	if _, err := fx.a.Verify(tok1); !errors.Is(err, ErrRevoked) {
		t.Fatalf("Verify(revoked jti) = %v, want %v", err, ErrRevoked)
	}
	if _, err := fx.a.Verify(tok2); err != nil {
		t.Fatalf("Verify(sibling jti) = %v, want nil", err)
	}
}

func TestBumpEpoch(t *testing.T) {
	fx := newFixture(t)
	old, _ := fx.mint(t, "coder")
	if _, err := fx.a.Verify(old); err != nil {
		t.Fatal(err)
	}
	ep, err := fx.r.BumpEpoch()
	if err != nil || ep != 1 {
		t.Fatalf("BumpEpoch = %d, %v, want 1, nil", ep, err)
	}
	if _, err := fx.a.Verify(old); !errors.Is(err, ErrRevoked) {
		t.Fatalf("Verify(pre-epoch token) = %v, want %v", err, ErrRevoked)
	}
	fresh, c := fx.mint(t, "coder")
	if c.Epoch != 1 {
		t.Fatalf("new token epoch = %d, want 1", c.Epoch)
	}
	fx.reopen(t)
	if _, err := fx.a.Verify(old); !errors.Is(err, ErrRevoked) {
		t.Fatalf("Verify(pre-epoch token) after restart = %v, want %v", err, ErrRevoked)
	}
	if _, err := fx.a.Verify(fresh); err != nil {
		t.Fatalf("Verify(post-epoch token) after restart = %v, want nil", err)
	}
}

func TestOpenRevocationsFailsClosed(t *testing.T) {
	const sid = "0123456789abcdef0123456789abcdef"
	tests := []struct {
		name    string
		content string
	}{
		{"a truncated file is corrupt", `{"version":1,"epoch":`},
		{"garbage is corrupt", "\x00\x01not json"},
		{"an unknown version is refused", `{"version":2,"epoch":0}`},
		{"an unknown field is refused", `{"version":1,"epoch":0,"extra":true}`},
		{"trailing data is refused", `{"version":1,"epoch":0} {}`},
		{"a malformed session id is refused", `{"version":1,"sessions":{"xyz":"2030-01-01T00:00:00Z"}}`},
		{"a zero until is refused", `{"version":1,"sessions":{"` + sid + `":"0001-01-01T00:00:00Z"}}`},
		{"a negative epoch is refused", `{"version":1,"epoch":-1}`},
		{"an empty file is corrupt", ``},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "revocations.json")
			if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			if r, err := OpenRevocations(path, nil); err == nil || r != nil {
				t.Fatalf("OpenRevocations(%q) = %v, %v, want an error", tt.content, r, err)
			}
		})
	}
	t.Run("a directory in place of the file is refused", func(t *testing.T) {
		if _, err := OpenRevocations(t.TempDir(), nil); err == nil {
			t.Fatal("OpenRevocations(dir) succeeded")
		}
	})
	t.Run("a missing file is an empty list", func(t *testing.T) {
		r, err := OpenRevocations(filepath.Join(t.TempDir(), "none.json"), nil)
		if err != nil || r.Len() != 0 || r.Epoch() != 0 {
			t.Fatalf("OpenRevocations(missing) = %v, %v, want empty", r, err)
		}
	})
}

func TestRevocationsWriteIsAtomic(t *testing.T) {
	fx := newFixture(t)
	for range 5 {
		_, c := fx.mint(t, "coder")
		if err := fx.r.RevokeSession(c.SID, c.ExpiresAt.Time); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := fx.r.BumpEpoch(); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(filepath.Dir(fx.path))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != filepath.Base(fx.path) {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Fatalf("directory holds %v, want only %s", names, filepath.Base(fx.path))
	}
	fi, err := os.Stat(fx.path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("revocation file mode = %v, %v, want 0600", fi.Mode(), err)
	}
}

func TestRevocationsWriteFailureKeepsKillInMemory(t *testing.T) {
	fx := newFixture(t)
	tok, c := fx.mint(t, "coder")
	fx.r.path = filepath.Join(t.TempDir(), "missing-dir", "revocations.json")
	if err := fx.r.RevokeSession(c.SID, c.ExpiresAt.Time); err == nil {
		t.Fatal("RevokeSession into a missing directory succeeded")
	}
	if _, err := fx.a.Verify(tok); !errors.Is(err, ErrRevoked) {
		t.Fatalf("Verify after a failed persist = %v, want %v", err, ErrRevoked)
	}
}

func TestRevocationsPrune(t *testing.T) {
	fx := newFixture(t)
	_, c1 := fx.mint(t, "coder")
	if err := fx.r.RevokeSession(c1.SID, fx.clk.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := fx.r.RevokeToken(c1.ID, fx.clk.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	fx.clk.Advance(time.Minute + leeway) // still inside the leeway: kept
	if err := fx.r.Prune(); err != nil || fx.r.Len() != 2 {
		t.Fatalf("Prune at until+leeway: Len = %d, %v, want 2", fx.r.Len(), err)
	}
	fx.clk.Advance(time.Second)
	if err := fx.r.Prune(); err != nil || fx.r.Len() != 1 {
		t.Fatalf("Prune past until+leeway: Len = %d, %v, want 1", fx.r.Len(), err)
	}
	fx.reopen(t)
	if fx.r.Len() != 1 {
		t.Fatalf("after reopen Len = %d, want 1", fx.r.Len())
	}
	fx.clk.Advance(2 * time.Hour)
	fx.reopen(t) // pruned on open too
	if fx.r.Len() != 0 {
		t.Fatalf("after reopen past every until Len = %d, want 0", fx.r.Len())
	}
	data, err := os.ReadFile(fx.path)
	if err != nil || strings.Contains(string(data), c1.SID) {
		t.Fatalf("file after prune = %s, %v, want no entry for %s", data, err, c1.SID)
	}
}

func TestRevokeRefusesBadInput(t *testing.T) {
	fx := newFixture(t)
	if err := fx.r.RevokeSession("not-hex", fx.clk.Now()); err == nil {
		t.Fatal("RevokeSession(not-hex) succeeded")
	}
	if err := fx.r.RevokeToken("0123456789abcdef0123456789abcdef", time.Time{}); err == nil {
		t.Fatal("RevokeToken with zero until succeeded")
	}
}
