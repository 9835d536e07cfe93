//go:build linux

package main

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tokfence/tokfence/keystore/keystoretest"
)

// activate starts `tokfence daemon` as systemd would with socket
// activation: the sockets on descriptors 3 and up, LISTEN_FDS, and
// LISTEN_PID set to the daemon's own pid (pid names who they are for).
func activate(t *testing.T, e *cliEnv, pid string, files ...*os.File) (*exec.Cmd, *bytes.Buffer, chan error) {
	t.Helper()
	if pid == "" {
		pid = "$$" // the shell's, which exec makes the daemon's
	}
	cmd := exec.Command("sh", "-c", `export LISTEN_PID=`+pid+`; exec "$0" daemon`, binPath)
	cmd.Env = append(e.env, "LISTEN_FDS="+strconv.Itoa(len(files)), "LISTEN_FDNAMES=tokfence.socket")
	cmd.ExtraFiles = files
	logs := new(bytes.Buffer)
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done, exited := make(chan error, 1), make(chan struct{})
	go func() { done <- cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
		}
	})
	return cmd, logs, done
}

// systemdSocket binds path as systemd's tokfence.socket does (a 0700
// directory, the socket at mode) and returns the listener and its file.
func systemdSocket(t *testing.T, path string, mode os.FileMode) (*net.UnixListener, *os.File) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
	f, err := ln.File()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return ln, f
}

// waitStatus waits until status answers, or the daemon exits.
func waitStatus(t *testing.T, e *cliEnv, logs *bytes.Buffer, done chan error) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if r := e.run("", "status"); r.code == 0 {
			return
		}
		select {
		case err := <-done:
			t.Fatalf("daemon exited: %v\n%s", err, logs)
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Fatalf("daemon not ready:\n%s", logs)
}

// refused waits for the daemon to exit 1 and returns its output.
func refused(t *testing.T, logs *bytes.Buffer, done chan error) string {
	t.Helper()
	select {
	case err := <-done:
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
			t.Fatalf("daemon exit = %v, want 1\n%s", err, logs)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("daemon did not refuse the socket:\n%s", logs)
	}
	return logs.String()
}

// TestSocketActivation runs the daemon on a socket passed as systemd's
// tokfence.socket passes it: it serves it, leaves it in place when it
// stops (systemd still listens there), serves it again, and refuses, with
// the fix, a socket that fails the checks its own socket must pass.
func TestSocketActivation(t *testing.T) {
	kr := keystoretest.Start(t)

	t.Run("a checked socket is served, and outlives the daemon", func(t *testing.T) {
		e := newCLIEnv(t, kr)
		_, f := systemdSocket(t, e.socket, 0o600)
		for round := 1; round <= 2; round++ {
			cmd, logs, done := activate(t, e, "", f)
			waitStatus(t, e, logs, done)
			if r := e.run("", "status", "--json"); !strings.Contains(r.stdout, `"socket": "`+e.socket+`"`) {
				t.Fatalf("round %d: status = %+v", round, r)
			}
			cmd.Process.Signal(syscall.SIGTERM)
			if err := <-done; err != nil {
				t.Fatalf("round %d: daemon exit: %v\n%s", round, err, logs)
			}
			if fi, err := os.Lstat(e.socket); err != nil || fi.Mode()&os.ModeSocket == 0 {
				t.Fatalf("round %d: the activated socket is gone after the daemon stopped (%v); systemd could not start it again", round, err)
			}
		}
	})

	t.Run("LISTEN_PID of another process is not for us", func(t *testing.T) {
		e := newCLIEnv(t, kr)
		_, f := systemdSocket(t, filepath.Join(e.home, "run", "elsewhere", "s.sock"), 0o600)
		_, logs, done := activate(t, e, "1", f)
		waitStatus(t, e, logs, done) // on the socket it bound itself
	})

	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, e *cliEnv) []*os.File
		want  []string
	}{
		{"a socket others may open", func(t *testing.T, e *cliEnv) []*os.File {
			_, f := systemdSocket(t, e.socket, 0o666)
			return []*os.File{f}
		}, []string{"has mode 0666", "SocketMode=0600"}},
		{"a socket at another path", func(t *testing.T, e *cliEnv) []*os.File {
			_, f := systemdSocket(t, filepath.Join(filepath.Dir(e.socket), "other.sock"), 0o600)
			return []*os.File{f}
		}, []string{"bound to", "other.sock", "ListenStream="}},
		{"a socket in an open directory", func(t *testing.T, e *cliEnv) []*os.File {
			_, f := systemdSocket(t, e.socket, 0o600)
			os.Chmod(filepath.Dir(e.socket), 0o755)
			return []*os.File{f}
		}, []string{"chmod 700"}},
		{"two sockets", func(t *testing.T, e *cliEnv) []*os.File {
			_, f := systemdSocket(t, e.socket, 0o600)
			_, g := systemdSocket(t, filepath.Join(filepath.Dir(e.socket), "two.sock"), 0o600)
			return []*os.File{f, g}
		}, []string{"passed 2 sockets", "exactly one ListenStream="}},
		{"a file that is no socket", func(t *testing.T, e *cliEnv) []*os.File {
			f, err := os.CreateTemp(e.home, "notasocket")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { f.Close() })
			return []*os.File{f}
		}, []string{"socket activation: descriptor 3"}},
	} {
		t.Run("refused: "+tc.name, func(t *testing.T) {
			e := newCLIEnv(t, kr)
			_, logs, done := activate(t, e, "", tc.setup(t, e)...)
			out := refused(t, logs, done)
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("daemon output lacks %q:\n%s", w, out)
				}
			}
		})
	}
}
