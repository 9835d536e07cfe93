package keystore

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func newTestStore(t *testing.T) (*Store, *Memory, string) {
	t.Helper()
	m := NewMemory()
	dir := t.TempDir()
	return New(m, NewIndex(filepath.Join(dir, "keys.json")), time.Second), m, dir
}

func TestStoreRoundTrip(t *testing.T) {
	ctx := context.Background()
	s, _, dir := newTestStore(t)
	if _, err := s.ProviderKey(ctx, "openai"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("ProviderKey before set = %v, want ErrNotFound", err)
	}
	for _, v := range []string{fakeKey, fakeKey + "-rotated"} {
		if err := s.SetProviderKey(ctx, "openai", NewSecret([]byte(v))); err != nil {
			t.Fatal(err)
		}
		got, err := s.ProviderKey(ctx, "openai")
		if err != nil || string(got.Reveal()) != v {
			t.Fatalf("ProviderKey = %v, %v; want the value just set", got, err)
		}
	}
	entries, gen, err := s.Index().List()
	if err != nil || len(entries) != 1 || entries[0].Provider != "openai" || gen != 2 {
		t.Fatalf("List() = %v, %d, %v; want [openai] at generation 2", entries, gen, err)
	}
	idx, _ := os.ReadFile(filepath.Join(dir, "keys.json"))
	if strings.Contains(string(idx), "TEST") {
		t.Fatalf("index holds secret material: %s", idx)
	}
	if fi, _ := os.Stat(filepath.Join(dir, "keys.json")); fi.Mode().Perm() != 0o600 {
		t.Fatalf("index mode = %v, want 0600", fi.Mode().Perm())
	}
	if err := s.DeleteProviderKey(ctx, "openai"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteProviderKey(ctx, "openai"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second delete = %v, want ErrNotFound", err)
	}
	if entries, _, _ := s.Index().List(); len(entries) != 0 {
		t.Fatalf("index after delete = %v, want empty", entries)
	}
}

func TestStoreRefusesBadInputWithoutEchoingIt(t *testing.T) {
	ctx := context.Background()
	s, m, _ := newTestStore(t)
	tests := []struct {
		name, provider, key string
	}{
		{"empty key", "openai", ""},
		{"key with CRLF", "openai", "sk-abc\r\nX-Evil: 1SECRETPART"},
		{"key with NUL", "openai", "sk-abc\x00SECRETPART"},
		{"oversized key", "openai", strings.Repeat("S", MaxSecretLen+1)},
		{"only spaces", "openai", "  "},
		{"only a no-break space", "openai", "\u00a0"},
		{"leading space", "openai", " SECRETPARTabcdefgh"},
		{"trailing space", "openai", "SECRETPARTabcdefgh "},
		{"trailing no-break space", "openai", "SECRETPARTabcdefgh\u00a0"},
		{"leading byte-order mark", "openai", "\ufeffSECRETPARTabcdefgh"},
		{"trailing zero-width space", "openai", "SECRETPARTabcdefgh\u200b"},
		{"key with a tab", "openai", "SECRETPART\tabcdefgh"},
		{"bad provider name", "../openai", "SECRETPARTabcdefgh"},
		{"upper-case provider", "OpenAI", "SECRETPARTabcdefgh"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := s.SetProviderKey(ctx, tt.provider, NewSecret([]byte(tt.key)))
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("SetProviderKey = %v, want ErrInvalid", err)
			}
			if strings.Contains(err.Error(), "SECRETPART") || strings.Contains(err.Error(), "SSSSSSSS") {
				t.Fatalf("error echoes the value: %v", err)
			}
			if len(m.items) != 0 {
				t.Fatalf("something was stored: %d items", len(m.items))
			}
		})
	}
}

func TestStoreUnavailableIsClassified(t *testing.T) {
	ctx := context.Background()
	s, m, dir := newTestStore(t)
	m.SetFail(errors.New("dbus: couldn't determine address of session bus"))
	err := s.SetProviderKey(ctx, "openai", NewSecret([]byte(fakeKey)))
	var ue *UnavailableError
	if !errors.As(err, &ue) || !errors.Is(err, ErrUnavailable) {
		t.Fatalf("SetProviderKey = %v, want *UnavailableError", err)
	}
	if !strings.Contains(err.Error(), "no D-Bus session bus") || ue.Hint() == "" {
		t.Fatalf("error %q / hint %q: want the cause in words and a fix", err, ue.Hint())
	}
	if _, err := os.Stat(filepath.Join(dir, "keys.json")); !os.IsNotExist(err) {
		t.Fatalf("index was written although the keychain failed: %v", err)
	}
}

func TestStoreCallHasDeadline(t *testing.T) {
	m := NewMemory()
	m.Block = make(chan struct{})
	defer close(m.Block)
	s := New(m, nil, 50*time.Millisecond)
	start := time.Now()
	_, err := s.ProviderKey(context.Background(), "openai")
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "did not answer") {
		t.Fatalf("ProviderKey on a hung keychain = %v, want a timeout UnavailableError", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Fatalf("deadline not enforced")
	}
}

func TestScrubRemovesEchoedSecret(t *testing.T) {
	err := scrub(errors.New("backend said: value "+fakeKey+" rejected"), NewSecret([]byte(fakeKey)))
	if strings.Contains(err.Error(), fakeKey) {
		t.Fatalf("scrub left the secret: %v", err)
	}
}

// TestIndexWatchSeesAnotherProcessesChange: a write to the index through
// another Index value (as another process's `key set` would make) is
// signalled, and its stamp differs.
func TestIndexWatchSeesAnotherProcessesChange(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "keys.json")
	watched, other := NewIndex(path), NewIndex(path)
	before := watched.Stamp()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	changed := make(chan struct{}, 16)
	done, err := watched.Watch(ctx, func() {
		select {
		case changed <- struct{}{}:
		default:
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := other.Add("openai"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-changed:
	case <-time.After(10 * time.Second):
		t.Fatal("no change signalled after another Index wrote the file")
	}
	if watched.Stamp() == before {
		t.Error("the stamp did not change with the file")
	}
	if _, err := NewIndex(filepath.Join(dir, "missing", "keys.json")).Watch(ctx, func() {}); err == nil {
		t.Error("Watch of a missing directory succeeded; it must say it cannot watch")
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the watch did not stop when its context ended")
	}
}

func TestValidateKeyAcceptsOpaqueKeys(t *testing.T) {
	for _, v := range []string{
		fakeKey,
		"a",                      // short, but a key is what the provider says it is
		"user name:pass word",    // spaces inside are a field value's own
		"ключ-секрет",            // non-ASCII inside
		"sk-abc\u00a0def-inside", // a no-break space inside is not at an edge
	} {
		if err := ValidateKey([]byte(v)); err != nil {
			t.Errorf("ValidateKey(%q) = %v, want nil", v, err)
		}
	}
}
