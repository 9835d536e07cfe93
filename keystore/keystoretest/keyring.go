// Package keystoretest starts a private, throwaway Secret Service for tests
// and the load harness: its own D-Bus session bus and a gnome-keyring-daemon
// whose login keyring is unlocked with a random password and kept under a
// temporary $HOME. Nothing touches the user's real keyring.
//
// When the tools are missing, Start skips the test, unless
// TOKFENCE_REQUIRE_KEYRING=1 (set by `make test` and CI), in which case it
// fails: a keychain test that silently skips in CI proves nothing.
package keystoretest

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Env is a running private Secret Service.
type Env struct {
	Home    string // the throwaway $HOME (keyring files live under it)
	Address string // DBUS_SESSION_BUS_ADDRESS
}

// Vars returns the environment a child process needs to use this keyring.
func (e *Env) Vars() []string {
	return []string{
		"HOME=" + e.Home,
		"DBUS_SESSION_BUS_ADDRESS=" + e.Address,
		"XDG_DATA_HOME=" + filepath.Join(e.Home, ".local", "share"),
		"XDG_CONFIG_HOME=" + filepath.Join(e.Home, ".config"),
		"XDG_STATE_HOME=" + filepath.Join(e.Home, ".local", "state"),
		"XDG_RUNTIME_DIR=" + filepath.Join(e.Home, "run"),
	}
}

// Start launches a private bus and keyring for the test and stops them when
// it ends.
func Start(tb testing.TB) *Env {
	tb.Helper()
	home, err := os.MkdirTemp("", "tokfence-keyring-")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { os.RemoveAll(home) })
	env, stop, err := Launch(context.Background(), home)
	if err != nil {
		if os.Getenv("TOKFENCE_REQUIRE_KEYRING") == "1" {
			tb.Fatalf("TOKFENCE_REQUIRE_KEYRING=1 but %v", err)
		}
		tb.Skipf("no Secret Service for this test: %v", err)
	}
	tb.Cleanup(stop)
	return env
}

// Launch starts a private bus and keyring under home (created if needed).
// stop ends both; it is safe to call once, and is a no-op on error paths,
// where Launch has already cleaned up.
func Launch(ctx context.Context, home string) (env *Env, stop func(), err error) {
	for _, bin := range []string{"dbus-daemon", "gnome-keyring-daemon", "dbus-send"} {
		if _, err := exec.LookPath(bin); err != nil {
			return nil, nil, fmt.Errorf("%s is not installed (apt-get install dbus dbus-bin gnome-keyring)", bin)
		}
	}
	for _, d := range []string{".local/share/keyrings", ".config", ".local/state", "run"} {
		if err := os.MkdirAll(filepath.Join(home, d), 0o700); err != nil {
			return nil, nil, err
		}
	}
	env = &Env{Home: home}
	bus, err := startBus(env)
	if err != nil {
		return nil, nil, err
	}
	keyringPID, err := startKeyring(env)
	stop = func() {
		if keyringPID > 0 {
			syscall.Kill(keyringPID, syscall.SIGTERM)
		}
		bus.Process.Kill()
		bus.Wait()
	}
	if err == nil {
		err = waitForService(ctx, env)
	}
	if err != nil {
		stop()
		return nil, nil, err
	}
	return env, stop, nil
}

func startBus(env *Env) (*exec.Cmd, error) {
	cmd := exec.Command("dbus-daemon", "--session", "--nofork", "--print-address=1", "--address=unix:dir="+env.Home)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start dbus-daemon: %w", err)
	}
	line := make(chan string, 1)
	go func() { // ends when the bus prints its address or exits
		s, _ := bufio.NewReader(out).ReadString('\n')
		line <- strings.TrimSpace(s)
	}()
	select {
	case env.Address = <-line:
		if env.Address != "" {
			return cmd, nil
		}
	case <-time.After(10 * time.Second):
	}
	cmd.Process.Kill()
	cmd.Wait()
	return nil, errors.New("dbus-daemon printed no address within 10s")
}

// startKeyring runs gnome-keyring-daemon, which daemonizes (so it is no
// child of ours); it returns the pid it prints, and it exits with its bus
// in any case.
func startKeyring(env *Env) (int, error) {
	pw := make([]byte, 16)
	rand.Read(pw)
	cmd := exec.Command("gnome-keyring-daemon", "--unlock", "--components=secrets", "--daemonize")
	cmd.Env = append(os.Environ(), env.Vars()...)
	cmd.Stdin = strings.NewReader(hex.EncodeToString(pw))
	out, err := cmd.Output()
	if err != nil {
		return 0, fmt.Errorf("gnome-keyring-daemon: %w", err)
	}
	for _, l := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(l, "GNOME_KEYRING_PID="); ok {
			if pid, err := strconv.Atoi(strings.TrimSpace(v)); err == nil {
				return pid, nil
			}
		}
	}
	return 0, nil
}

// waitForService polls until org.freedesktop.secrets answers on the bus.
func waitForService(ctx context.Context, env *Env) error {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		cmd := exec.CommandContext(ctx, "dbus-send", "--session", "--print-reply", "--dest=org.freedesktop.DBus",
			"/org/freedesktop/DBus", "org.freedesktop.DBus.NameHasOwner", "string:org.freedesktop.secrets")
		cmd.Env = append(os.Environ(), env.Vars()...)
		if out, err := cmd.Output(); err == nil && strings.Contains(string(out), "true") {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return errors.New("org.freedesktop.secrets did not appear on the private bus within 10s")
}
