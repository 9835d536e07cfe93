package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tokfence/tokfence/daemon/audit"
	"github.com/tokfence/tokfence/daemon/ctl"
	"github.com/tokfence/tokfence/daemon/layout"
	"github.com/tokfence/tokfence/daemon/localsock"
)

func TestSocketIsPrivateWhateverTheUmask(t *testing.T) {
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	e := startEnv(t, testConfig(t))
	for _, c := range []struct {
		path string
		want os.FileMode
	}{{filepath.Dir(e.cfg.Socket), 0o700}, {e.cfg.Socket, 0o600}, {e.cfg.StateDir, 0o700}} {
		fi, err := os.Lstat(c.path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != c.want {
			t.Errorf("mode of %s = %#o, want %#o", c.path, fi.Mode().Perm(), c.want)
		}
	}
	st, err := ctl.New(e.cfg.Socket).Status(context.Background())
	if err != nil || st.Socket != e.cfg.Socket || !st.Strict {
		t.Fatalf("Status() = %+v, %v", st, err)
	}
}

func TestRefusesUnsafeSocketDir(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, dir string)
		want  string
	}{
		{"a symlink to a private dir", func(t *testing.T, dir string) {
			real := dir + ".real"
			must(t, os.Mkdir(real, 0o700))
			must(t, os.Symlink(real, dir))
		}, "symlink"},
		{"a world-writable dir", func(t *testing.T, dir string) {
			must(t, os.Mkdir(dir, 0o700))
			must(t, os.Chmod(dir, 0o777))
		}, "mode 0777"},
		{"a group-readable dir", func(t *testing.T, dir string) {
			must(t, os.Mkdir(dir, 0o750))
			must(t, os.Chmod(dir, 0o750))
		}, "mode 0750"},
		{"a foreign-owned dir", func(t *testing.T, dir string) {
			if os.Getuid() != 0 {
				t.Skip("needs root to chown")
			}
			must(t, os.Mkdir(dir, 0o700))
			must(t, os.Chown(dir, 65534, 65534))
		}, "owned by uid 65534"},
		{"a file", func(t *testing.T, dir string) {
			must(t, os.WriteFile(dir, nil, 0o600))
		}, "not a directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig(t)
			tt.setup(t, filepath.Dir(cfg.Socket))
			err := newEnv(t, cfg).start()
			if !errors.Is(err, localsock.ErrUnsafeDir) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("start = %v, want localsock.ErrUnsafeDir mentioning %q", err, tt.want)
			}
			if _, err := os.Lstat(cfg.Socket); err == nil {
				t.Fatalf("a socket was created in the unsafe dir")
			}
		})
	}
}

// TestSecondDaemonSaysAlreadyRunning starts a second daemon on the first
// one's state directory, on the same socket and on another: both are
// refused before they touch the state, so the first one's audit chain
// stays whole and it keeps serving (issue 14, item 12).
func TestSecondDaemonSaysAlreadyRunning(t *testing.T) {
	e := startEnv(t, testConfig(t))
	other := e.cfg
	other.Socket = filepath.Join(shortTempDir(t), "other.sock")
	for _, cfg := range []Config{e.cfg, other} {
		err := newEnvWith(t, cfg, e.mem, e.clock).start()
		if !errors.Is(err, localsock.ErrAlreadyRunning) || !strings.Contains(err.Error(), "state dir") {
			t.Fatalf("second start on socket %s = %v, want localsock.ErrAlreadyRunning for the state dir", cfg.Socket, err)
		}
	}
	if _, err := ctl.New(e.cfg.Socket).Status(context.Background()); err != nil {
		t.Fatalf("first daemon disturbed: %v", err)
	}
	if _, err := os.Lstat(other.Socket); err == nil {
		t.Fatal("the refused daemon created its socket")
	}
	e.d.appendAudit(audit.Record{Event: audit.EventKill}) // the first daemon writes on
	if _, err := audit.Verify(layout.StateDir(e.cfg.StateDir).Audit()); err != nil {
		t.Fatalf("the first daemon's audit chain after a second start: %v", err)
	}
}

func TestStaleSocketIsReplaced(t *testing.T) {
	cfg := testConfig(t)
	must(t, os.MkdirAll(filepath.Dir(cfg.Socket), 0o700))
	ln, err := net.Listen("unix", cfg.Socket)
	must(t, err)
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close() // leaves a dead socket file behind, as a crash would
	if _, err := os.Lstat(cfg.Socket); err != nil {
		t.Fatalf("stale socket missing: %v", err)
	}
	e := startEnv(t, cfg)
	if _, err := ctl.New(e.cfg.Socket).Status(context.Background()); err != nil {
		t.Fatalf("Status after replacing stale socket: %v", err)
	}
	e.stop()
	if _, err := os.Lstat(cfg.Socket); !os.IsNotExist(err) {
		t.Fatalf("socket left after shutdown: %v", err)
	}
}

func TestRefusesNonSocketAtPath(t *testing.T) {
	cfg := testConfig(t)
	must(t, os.MkdirAll(filepath.Dir(cfg.Socket), 0o700))
	must(t, os.WriteFile(cfg.Socket, []byte("precious"), 0o600))
	if err := newEnv(t, cfg).start(); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Fatalf("start = %v, want a refusal to replace a regular file", err)
	}
	if b, _ := os.ReadFile(cfg.Socket); string(b) != "precious" {
		t.Fatalf("the file was clobbered")
	}
}

func TestRefusesSocketPathLongerThanSunPath(t *testing.T) {
	cfg := testConfig(t)
	cfg.Socket = filepath.Join(filepath.Dir(cfg.Socket), strings.Repeat("x", localsock.SunPathMax)+".sock")
	if err := newEnv(t, cfg).start(); err == nil || !strings.Contains(err.Error(), "allows") {
		t.Fatalf("start = %v, want a sun_path length error", err)
	}
}

// TestForeignUIDIsRefused dials the socket as uid 65534 (nobody) through
// setpriv, with the directory and socket opened to everyone, so only the
// peer-credential check stands between that uid and the daemon.
func TestForeignUIDIsRefused(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to drop to another uid")
	}
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		t.Fatal("setpriv not installed (util-linux)")
	}
	e := startEnv(t, testConfig(t))
	must(t, os.Chmod(filepath.Dir(filepath.Dir(e.cfg.Socket)), 0o755))
	must(t, os.Chmod(filepath.Dir(e.cfg.Socket), 0o755))
	must(t, os.Chmod(e.cfg.Socket, 0o666))
	helper := copyTestBinary(t)

	self := exec.Command(helper, "-test.run=^TestHelperDial$")
	self.Env = append(os.Environ(), "TOKFENCE_HELPER_DIAL="+e.cfg.Socket)
	if out, err := self.CombinedOutput(); err != nil || !strings.Contains(string(out), "status 200") {
		t.Fatalf("control: the daemon's own uid should be served: %v\n%s", err, out)
	}
	other := exec.Command(setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", helper, "-test.run=^TestHelperDial$")
	other.Env = append(os.Environ(), "TOKFENCE_HELPER_DIAL="+e.cfg.Socket)
	out, _ := other.CombinedOutput()
	if strings.Contains(string(out), "status 200") || !strings.Contains(string(out), "dial result:") {
		t.Fatalf("uid 65534 was served (or the helper did not run):\n%s", out)
	}
	if !strings.Contains(e.logs.String(), "refused connection from a uid that is not allowed") || !strings.Contains(e.logs.String(), "peer_uid=65534") {
		t.Fatalf("refusal not logged:\n%s", e.logs.String())
	}
	// And on the audit trail, once a minute per uid (issue 14, item 13).
	for range 2 {
		again := exec.Command(setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", helper, "-test.run=^TestHelperDial$")
		again.Env = other.Env
		again.Run()
	}
	var recs []audit.Record
	waitUntil(t, "the refusal on the audit trail", func() bool {
		recs = nil
		audit.Read(layout.StateDir(e.cfg.StateDir).Audit(), audit.Filter{Event: audit.EventPeerRefused}, func(r audit.Record) error {
			recs = append(recs, r)
			return nil
		})
		return len(recs) > 0
	})
	if len(recs) != 1 || recs[0].PeerUID == nil || *recs[0].PeerUID != 65534 || recs[0].PeerPID == 0 {
		t.Fatalf("peer_refused records = %+v, want one for uid 65534 with its pid", recs)
	}
}

func TestRefusedPeersAreRateLimitedPerUID(t *testing.T) {
	var r refusedPeers
	now := time.Unix(1e9, 0)
	a, b := localsock.Peer{UID: 1001, PID: 10, Transport: "unix"}, localsock.Peer{UID: 1002, PID: 11, Transport: "unix"}
	if _, ok := r.note(a, now); !ok {
		t.Fatal("the first refusal of a uid is not recorded")
	}
	for i := range 3 {
		if _, ok := r.note(a, now.Add(time.Duration(i)*time.Second)); ok {
			t.Fatalf("refusal %d within the minute recorded", i+2)
		}
	}
	if _, ok := r.note(b, now); !ok {
		t.Fatal("another uid's first refusal is not recorded")
	}
	rec, ok := r.note(a, now.Add(refusedEvery))
	if !ok || rec.Detail["suppressed"] != "3" || *rec.PeerUID != 1001 {
		t.Fatalf("refusal a minute on = %+v, %v; want a record counting the 3 suppressed", rec, ok)
	}
	for uid := range maxRefusedUIDs + 10 {
		r.note(localsock.Peer{UID: 5000 + uid}, now)
	}
	if n := len(r.last); n > maxRefusedUIDs+1 {
		t.Fatalf("the table holds %d uids, want at most %d", n, maxRefusedUIDs+1)
	}
}

// TestHelperDial is not a test: TestForeignUIDIsRefused runs it in a child
// process (as another uid) to dial the daemon.
func TestHelperDial(t *testing.T) {
	sock := os.Getenv("TOKFENCE_HELPER_DIAL")
	if sock == "" {
		t.Skip("helper process only")
	}
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		}}}
	resp, err := hc.Get("http://tokfence/v1/status")
	if err != nil {
		fmt.Printf("dial result: error %v\n", err)
		return
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	fmt.Printf("dial result: status %d\n", resp.StatusCode)
}

func copyTestBinary(t *testing.T) string {
	t.Helper()
	dir := shortTempDir(t)
	must(t, os.Chmod(dir, 0o755))
	b, err := os.ReadFile(os.Args[0])
	must(t, err)
	p := filepath.Join(dir, "helper.test")
	must(t, os.WriteFile(p, b, 0o755))
	return p
}

func TestControlAPIRefusesCapabilityHeaders(t *testing.T) {
	e := startEnv(t, testConfig(t))
	cl := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", e.cfg.Socket)
	}}}
	for _, h := range []string{"Authorization", "X-Api-Key", "x_api_key", "X-Goog-Api-Key"} {
		req, _ := http.NewRequest("GET", "http://tokfence/v1/status", nil)
		req.Header.Set(h, "Bearer whatever")
		resp, err := cl.Do(req)
		must(t, err)
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("GET /v1/status with %s = %d, want 403", h, resp.StatusCode)
		}
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
