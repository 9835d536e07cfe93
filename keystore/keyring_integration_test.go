package keystore_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tokfence/tokfence/keystore"
	"github.com/tokfence/tokfence/keystore/keystoretest"
)

// TestRealSecretService runs the Store against gnome-keyring on a private
// D-Bus: the OS-keychain path production uses, not a mock.
func TestRealSecretService(t *testing.T) {
	env := keystoretest.Start(t)
	// go-keyring dials the session bus named in the environment on first use.
	t.Setenv("DBUS_SESSION_BUS_ADDRESS", env.Address)
	t.Setenv("HOME", env.Home)
	ctx := context.Background()
	s := keystore.New(keystore.OS{}, keystore.NewIndex(filepath.Join(t.TempDir(), "keys.json")), 5*time.Second)
	if err := s.Probe(ctx); err != nil {
		t.Fatalf("Probe() = %v", err)
	}
	provider := fmt.Sprintf("itest%d", time.Now().UnixNano()%1e6)
	if _, err := s.ProviderKey(ctx, provider); !errors.Is(err, keystore.ErrNotFound) {
		t.Fatalf("get before set = %v, want ErrNotFound", err)
	}
	for _, v := range []string{"sk-itest-first-0123456789abcdef", "sk-itest-second-0123456789abcdef"} {
		if err := s.SetProviderKey(ctx, provider, keystore.NewSecret([]byte(v))); err != nil {
			t.Fatalf("set: %v", err)
		}
		got, err := s.ProviderKey(ctx, provider)
		if err != nil || string(got.Reveal()) != v {
			t.Fatalf("get after set = %v, %v, want the new value", got, err)
		}
	}
	if err := s.SetInternal(ctx, "signing-key", keystore.NewSecret(make([]byte, 64))); err != nil {
		t.Fatalf("set internal: %v", err)
	}
	if err := s.DeleteProviderKey(ctx, provider); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if _, err := s.ProviderKey(ctx, provider); !errors.Is(err, keystore.ErrNotFound) {
		t.Fatalf("get after delete = %v, want ErrNotFound", err)
	}
	if _, err := os.Stat(filepath.Join(env.Home, ".local/share/keyrings")); err != nil {
		t.Fatalf("the private keyring is not where expected: %v", err)
	}
}
