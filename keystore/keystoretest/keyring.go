// Package keystoretest starts a private, throwaway Secret Service for tests:
// its own D-Bus session bus and a gnome-keyring-daemon whose login keyring is
// unlocked with a random password and kept under a temporary $HOME. Nothing
// touches the user's real keyring.
//
// When the tools are missing the test is skipped, unless
// TOKFENCE_REQUIRE_KEYRING=1 (set by `make test` and CI), in which case it
// fails: a keychain test that silently skips in CI proves nothing.
package keystoretest

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
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

func required() bool { return os.Getenv("TOKFENCE_REQUIRE_KEYRING") == "1" }

func unavailable(tb testing.TB, format string, args ...any) {
	tb.Helper()
	if required() {
		tb.Fatalf("TOKFENCE_REQUIRE_KEYRING=1 but "+format, args...)
	}
	tb.Skipf("no Secret Service for this test: "+format, args...)
}

// Start launches a private bus and keyring for the test and stops them when
// it ends.
func Start(tb testing.TB) *Env {
	tb.Helper()
	for _, bin := range []string{"dbus-daemon", "gnome-keyring-daemon"} {
		if _, err := exec.LookPath(bin); err != nil {
			unavailable(tb, "%s is not installed (apt-get install dbus gnome-keyring)", bin)
		}
	}
	home, err := os.MkdirTemp("", "tokfence-keyring-")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { os.RemoveAll(home) })
	for _, d := range []string{".local/share/keyrings", ".config", ".local/state", "run"} {
		if err := os.MkdirAll(filepath.Join(home, d), 0o700); err != nil {
			tb.Fatal(err)
		}
	}
	env := &Env{Home: home}
	env.Address = startBus(tb, home)
	startKeyring(tb, env)
	return env
}

func startBus(tb testing.TB, home string) string {
	cmd := exec.Command("dbus-daemon", "--session", "--nofork", "--print-address=1", "--address=unix:dir="+home)
	out, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		unavailable(tb, "start dbus-daemon: %v", err)
	}
	tb.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(out).ReadString('\n')
		line <- strings.TrimSpace(s)
	}()
	select {
	case addr := <-line:
		if addr == "" {
			unavailable(tb, "dbus-daemon printed no address")
		}
		return addr
	case <-time.After(10 * time.Second):
		unavailable(tb, "dbus-daemon did not start within 10s")
	}
	return ""
}

func startKeyring(tb testing.TB, env *Env) {
	pw := make([]byte, 16)
	rand.Read(pw)
	cmd := exec.Command("gnome-keyring-daemon", "--unlock", "--components=secrets", "--daemonize")
	cmd.Env = append(os.Environ(), env.Vars()...)
	cmd.Stdin = strings.NewReader(hex.EncodeToString(pw))
	outb, err := cmd.Output()
	if err != nil {
		unavailable(tb, "gnome-keyring-daemon: %v", err)
	}
	// --daemonize prints GNOME_KEYRING_CONTROL=... and SSH_AUTH_SOCK; the
	// daemon exits with its bus, but kill it explicitly by pid if printed.
	for _, l := range strings.Split(string(outb), "\n") {
		if v, ok := strings.CutPrefix(l, "GNOME_KEYRING_PID="); ok {
			if pid, err := strconv.Atoi(strings.TrimSpace(v)); err == nil {
				tb.Cleanup(func() { syscall.Kill(pid, syscall.SIGTERM) })
			}
		}
	}
	waitForService(tb, env)
}

// waitForService polls until org.freedesktop.secrets answers on the bus.
func waitForService(tb testing.TB, env *Env) {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		cmd := exec.Command("dbus-send", "--session", "--print-reply", "--dest=org.freedesktop.DBus",
			"/org/freedesktop/DBus", "org.freedesktop.DBus.NameHasOwner", "string:org.freedesktop.secrets")
		cmd.Env = append(os.Environ(), env.Vars()...)
		if out, err := cmd.Output(); err == nil && strings.Contains(string(out), "true") {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	unavailable(tb, "org.freedesktop.secrets did not appear on the private bus")
}
