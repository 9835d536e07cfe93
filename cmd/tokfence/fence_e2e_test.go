package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tokfence/tokfence/daemon/api"
	"github.com/tokfence/tokfence/daemon/ctl"
	"github.com/tokfence/tokfence/keystore/keystoretest"
)

// These tests run `tokfence exec` as a user would, with the fence on (the
// default), and attack it from inside. The test homes live under /tmp,
// which a fence covers, so their config exposes the home (fence.expose):
// the secret paths inside it stay hidden, which is what is under test.

// fenceEnv is agentEnv with the home, and the paths in expose, exposed to
// fenced agents.
func fenceEnv(t testing.TB, expose ...string) (*cliEnv, *fakeProvider, *keystoretest.Env) {
	e, fp, kr := agentEnv(t)
	f, err := os.OpenFile(filepath.Join(e.home, ".config", "tokfence", "config.toml"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	list := `"~"`
	for _, p := range expose {
		list += fmt.Sprintf(", %q", p)
	}
	if _, err := io.WriteString(f, "[fence]\nexpose = ["+list+"]\n"); err != nil {
		t.Fatal(err)
	}
	return e, fp, kr
}

func (e *cliEnv) status() api.Status {
	e.t.Helper()
	r := e.run("", "status", "--json")
	var st api.Status
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &st) != nil {
		e.t.Fatalf("status --json = %+v", r)
	}
	return st
}

// plantSecrets writes a marker file under every default hidden path and
// returns their paths.
func plantSecrets(t *testing.T, home string) []string {
	files := []string{".ssh/id_probe", ".gnupg/private-keys-v1.d/k.key", ".aws/credentials", ".config/gcloud/credentials.db",
		".azure/accessTokens.json", ".kube/config", ".docker/config.json", ".netrc", ".npmrc", ".pypirc",
		".config/gh/hosts.yml", ".git-credentials", ".password-store/bank.gpg"}
	var out []string
	for _, f := range files {
		p := filepath.Join(home, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("PROBE-SECRET "+f), 0o600); err != nil {
			t.Fatal(err)
		}
		out = append(out, p)
	}
	return out
}

// probeBinary copies this test binary where a fenced agent can run it.
func probeBinary(t testing.TB, dir string) string {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "fence-probe")
	if err := os.WriteFile(p, b, 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// hostTargets are servers on the host that nothing inside a fence may
// reach: a TCP and a UDP listener on 127.0.0.1 and an abstract socket.
type hostTargets struct {
	tcp, abstract net.Listener
	udp           net.PacketConn
	accepts       atomic.Int32
}

func newHostTargets(t *testing.T) *hostTargets {
	h := &hostTargets{}
	var err error
	if h.tcp, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	name := make([]byte, 8)
	rand.Read(name)
	if h.abstract, err = net.Listen("unix", "@tokfence-probe-"+hex.EncodeToString(name)); err != nil {
		t.Fatal(err)
	}
	if h.udp, err = net.ListenPacket("udp", "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	for _, ln := range []net.Listener{h.tcp, h.abstract} {
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				h.accepts.Add(1)
				c.Close()
			}
		}()
	}
	t.Cleanup(func() { h.tcp.Close(); h.abstract.Close(); h.udp.Close() })
	return h
}

// udpReceived reports whether anything reached the UDP listener.
func (h *hostTargets) udpReceived() bool {
	h.udp.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	_, _, err := h.udp.ReadFrom(make([]byte, 64))
	return err == nil
}

// TestTerminalInjectionWorksOutsideAFence is the control for the fence's
// TIOCSTI attack: where the kernel still allows TIOCSTI, the probe's
// injection succeeds outside a fence, so its failure inside proves the
// fence's filter.
func TestTerminalInjectionWorksOutsideAFence(t *testing.T) {
	b, _ := os.ReadFile("/proc/sys/dev/tty/legacy_tiocsti")
	err := injectThroughPTY()
	switch strings.TrimSpace(string(b)) {
	case "0":
		if err == nil {
			t.Fatal("TIOCSTI worked although dev.tty.legacy_tiocsti = 0")
		}
		t.Logf("this kernel refuses TIOCSTI itself (dev.tty.legacy_tiocsti = 0): %v", err)
	default:
		if err != nil {
			t.Fatalf("TIOCSTI outside a fence = %v, want it to work (the attack the fence must stop)", err)
		}
	}
}

func TestFenceAttacks(t *testing.T) {
	e, _, kr := fenceEnv(t)
	e.startDaemon("--tcp", "127.0.0.1:0")
	st := e.status()
	hidden := plantSecrets(t, e.home)
	if err := os.WriteFile(filepath.Join(e.home, ".bashrc"), []byte("# PROBE-RC\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	hidden = append(hidden, filepath.Join(st.StateDir, "install-id"), filepath.Join(e.home, ".config", "tokfence", "config.toml"))
	keyrings, _ := filepath.Glob(filepath.Join(kr.Home, ".local", "share", "keyrings", "*"))
	hidden = append(hidden, keyrings...)
	var hiddenDirs []string
	for _, d := range []string{".ssh", ".gnupg", ".aws", ".config/gcloud", ".azure", ".kube", ".config/gh", ".password-store", ".config/tokfence"} {
		hiddenDirs = append(hiddenDirs, filepath.Join(e.home, d))
	}
	hiddenDirs = append(hiddenDirs, st.StateDir, filepath.Dir(st.Socket), filepath.Join(kr.Home, ".local", "share", "keyrings"))
	targets := newHostTargets(t)
	foreign := e.run("", "grant", "--agent", "other", "--provider", "openai")
	if foreign.code != 0 {
		t.Fatalf("grant = %+v", foreign)
	}
	probe := probeBinary(t, e.home)
	e.env = append(e.env, probeEnv+"=1", "PROBE_BUS="+kr.Address, "PROBE_CONTROL="+st.Socket,
		"PROBE_ABSTRACT="+strings.TrimPrefix(targets.abstract.Addr().String(), "@"),
		"PROBE_TCP="+targets.tcp.Addr().String()+","+st.TCP, "PROBE_UDP="+targets.udp.LocalAddr().String(),
		"PROBE_HIDDEN="+strings.Join(hidden, ":"), "PROBE_HIDDEN_DIRS="+strings.Join(hiddenDirs, ":"), "PROBE_DAEMON_PID="+strconv.Itoa(st.PID),
		"PROBE_FOREIGN_CAP="+strings.TrimSpace(foreign.stdout))
	r := e.runWithin(2*time.Minute, "", "exec", "--agent", "probe", "--provider", "openai", "--", probe)
	if r.code != 0 {
		t.Fatalf("fenced probe = %+v", r)
	}
	var res probeResult
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil {
		t.Fatalf("probe output %q: %v", r.stdout, err)
	}
	if len(res.Attacks) < 20 {
		t.Fatalf("probe ran %d attacks, want every one: %v", len(res.Attacks), res.Attacks)
	}
	for name, outcome := range res.Attacks {
		t.Run(name, func(t *testing.T) {
			t.Logf("%s: %s", name, outcome)
			if !strings.HasPrefix(outcome, "blocked") {
				t.Errorf("from inside the fence, %s: %s", name, outcome)
			}
		})
	}
	for name, outcome := range res.Works {
		if outcome != "ok" {
			t.Errorf("inside the fence, %s: %s", name, outcome)
		}
	}
	if n := targets.accepts.Load(); n != 0 {
		t.Errorf("the host's TCP or abstract listener accepted %d connections from the fence", n)
	}
	if targets.udpReceived() {
		t.Error("a UDP datagram from the fence reached the host's 127.0.0.1")
	}
	// The one attack that reaches the daemon is on the trail.
	a := e.run("", "audit", "--json")
	if !strings.Contains(a.stdout, `"status":403`) || !strings.Contains(a.stdout, `"fence":"fenced"`) ||
		!strings.Contains(a.stdout, `"exposed":"`+e.home+`"`) {
		t.Errorf("audit lacks the refused foreign token (403), or the fenced grant with its exposed home:\n%s", a.stdout)
	}
}

// TestFenceCanaryIsRedAndEndsTheFence: a canary from the fenced agent's
// environment, sent out, turns the session RED, and the RED session's
// fence is killed with everything in it.
func TestFenceCanaryIsRedAndEndsTheFence(t *testing.T) {
	e, fp, _ := fenceEnv(t)
	e.startDaemon()
	script := `curl -s -o /dev/null -w "status=%{http_code}\n" -H "Authorization: Bearer $OPENAI_API_KEY" -H "Content-Type: application/json" \
		-d "{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"user\",\"content\":\"$GITHUB_ADMIN_TOKEN\"}]}" "$OPENAI_BASE_URL/chat/completions";
		sleep 30; echo survived`
	start := time.Now()
	r := e.run("", "exec", "--agent", "leaky", "--provider", "openai", "--", "sh", "-c", script)
	if strings.Contains(r.stdout, "survived") || r.code != 128+int(syscall.SIGKILL) || time.Since(start) > 20*time.Second {
		t.Fatalf("exec after a canary = %+v, want the fence killed (exit %d)", r, 128+int(syscall.SIGKILL))
	}
	// Whether curl could still print the refusal is a race with the kill
	// that RED sets off; that nothing reached the upstream is not.
	if _, paths := fp.seen(); len(paths) != 0 {
		t.Fatalf("the canary reached the upstream: %v", paths)
	}
	a := e.run("", "audit", "--json")
	if !strings.Contains(a.stdout, `"RED"`) || !strings.Contains(a.stdout, "canary") {
		t.Fatalf("audit lacks the RED canary hit:\n%s", a.stdout)
	}
}

// fencePids returns the host pids of every process in the PID namespace
// of the fence started by the exec process execPid.
func fencePids(t testing.TB, execPid int) []int {
	// A child is listed under the thread that forked it, and exec's Go
	// runtime forks from whichever thread it is on, so read every task's.
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", execPid))
	var kids []string
	for _, f := range tasks {
		b, _ := os.ReadFile(f)
		kids = append(kids, strings.Fields(string(b))...)
	}
	var ns string
	for _, k := range kids {
		if l, err := os.Readlink("/proc/" + k + "/ns/pid"); err == nil {
			if own, _ := os.Readlink("/proc/self/ns/pid"); l != own {
				ns = l
			}
		}
	}
	if ns == "" {
		return nil
	}
	var pids []int
	es, _ := os.ReadDir("/proc")
	for _, e := range es {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if l, _ := os.Readlink("/proc/" + e.Name() + "/ns/pid"); l == ns {
			pids = append(pids, pid)
		}
	}
	return pids
}

func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// A zombie has exited; it waits only for its parent to read it.
	i := strings.LastIndexByte(string(b), ')')
	return i < 0 || !strings.HasPrefix(string(b[i:]), ") Z")
}

// TestFenceKillEndsEveryProcessInIt kills the session of a fence full of
// background and orphaned processes: every one of them must end, and exec
// with them by SIGKILL. How fast is BenchmarkExec/kill's to report (about
// 10 ms here, idle); a timed assertion would only measure the machine's load.
func TestFenceKillEndsEveryProcessInIt(t *testing.T) {
	e, _, _ := fenceEnv(t)
	e.startDaemon()
	replied, gone, n := killFullFence(t, e, "doomed")
	t.Logf("kill: reply after %v, all %d fence processes gone after %v", replied, n, gone)
}

// killFullFence starts a fenced exec whose agent leaves processes behind
// in every way a shell can, kills its session, and returns how long the
// kill took to reply and until every process of the fence was gone.
func killFullFence(t testing.TB, e *cliEnv, agent string) (replied, gone time.Duration, n int) {
	t.Helper()
	cmd := exec.Command(binPath, "exec", "--agent", agent, "--provider", "openai", "--",
		"sh", "-c", "sleep 600 & (sleep 600 &) ; sh -c 'sleep 600' & wait")
	cmd.Env = e.env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	var pids []int
	waitFor(t, "the fence's processes", func() bool {
		select {
		case err := <-exited:
			t.Fatalf("exec ended before it was killed: %v\n%s", err, stderr.String())
		default:
		}
		pids = fencePids(t, cmd.Process.Pid)
		return len(pids) >= 5
	})
	var sid string
	for _, s := range sessionsOf(t, e) {
		if s.Agent == agent {
			sid = s.ID
		}
	}
	cl := ctl.New(e.socket)
	start := time.Now()
	if _, err := cl.Kill(context.Background(), api.KillRequest{Session: sid}); err != nil {
		t.Fatal(err)
	}
	replied = time.Since(start)
	for {
		left := 0
		for _, p := range pids {
			if alive(p) {
				left++
			}
		}
		if left == 0 {
			break
		}
		if time.Since(start) > 5*time.Second {
			t.Fatalf("%d of the fence's %d processes outlived kill by 5 s", left, len(pids))
		}
		time.Sleep(100 * time.Microsecond)
	}
	gone = time.Since(start)
	err := <-exited
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 128+int(syscall.SIGKILL) {
		t.Fatalf("exec after kill = %v, want exit %d\n%s", err, 128+int(syscall.SIGKILL), stderr.String())
	}
	return replied, gone, len(pids)
}

func sessionsOf(t testing.TB, e *cliEnv) []api.SessionInfo {
	r := e.run("", "sessions", "--json")
	var out []api.SessionInfo
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &out) != nil {
		t.Fatalf("sessions --json = %+v", r)
	}
	return out
}

// TestFenceRefusedWithoutUserNamespaces runs exec where the kernel
// refuses user namespaces (a user namespace whose limit for new ones is
// 0): it must refuse with the cause and the fix, and run nothing.
func TestFenceRefusedWithoutUserNamespaces(t *testing.T) {
	e, _, _ := fenceEnv(t)
	marker := filepath.Join(e.home, "ran")
	cmd := exec.Command("unshare", "--user", "--map-root-user", "sh", "-c",
		`echo 0 > /proc/sys/user/max_user_namespaces && exec "$0" exec --agent a --provider openai -- touch "$1"`, binPath, marker)
	cmd.Env = e.env
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("exec without user namespaces = %v, want exit 1:\n%s", err, out)
	}
	for _, want := range []string{"tokfence: error: cannot build the fence: user namespaces are disabled",
		"tokfence: hint:", "user.max_user_namespaces", "--no-fence"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("exec without user namespaces printed %q, want %q in it", out, want)
		}
	}
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("the agent ran although the fence could not be built")
	}
}

func TestFencePassesExitCodesAndSignals(t *testing.T) {
	e, _, _ := fenceEnv(t)
	e.startDaemon()
	if r := e.run("", "exec", "--agent", "x", "--provider", "openai", "--", "sh", "-c", "exit 3"); r.code != 3 {
		t.Fatalf("exit 3 inside = %+v", r)
	}
	r := e.run("", "exec", "--agent", "x", "--provider", "openai", "--", "no-such-command-tokfence")
	if r.code != 127 || !strings.Contains(r.stderr, "tokfence: error: start no-such-command-tokfence") {
		t.Fatalf("a command that does not exist = %+v, want 127 and the reason", r)
	}
	termTrappedAgent(t, e, nil)
}

// TestUnfencedSessionsAreMarkedEverywhere: --no-fence runs the agent as
// before, and the session says so in sessions, status and the audit trail.
func TestUnfencedSessionsAreMarkedEverywhere(t *testing.T) {
	e, _, _ := fenceEnv(t)
	e.startDaemon("--tcp", "127.0.0.1:0")
	cmd := exec.Command(binPath, "exec", "--no-fence", "--agent", "loose", "--provider", "openai", "--", "sh", "-c", "sleep 30")
	cmd.Env = e.env
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	waitFor(t, "the unfenced session", func() bool {
		for _, s := range sessionsOf(t, e) {
			if s.Agent == "loose" && s.Fence == api.FenceUnfenced {
				return true
			}
		}
		return false
	})
	if st := e.status(); st.Unfenced != 1 {
		t.Errorf("status unfenced_sessions = %d, want 1", st.Unfenced)
	}
	if r := e.run("", "status"); !strings.Contains(r.stdout, "1 UNFENCED") {
		t.Errorf("status does not flag the unfenced session:\n%s", r.stdout)
	}
	if r := e.run("", "sessions"); !strings.Contains(r.stdout, "unfenced") {
		t.Errorf("sessions does not flag the unfenced session:\n%s", r.stdout)
	}
	if a := e.run("", "audit", "--json"); !strings.Contains(a.stdout, `"fence":"unfenced"`) {
		t.Errorf("the audit trail does not mark the grant unfenced:\n%s", a.stdout)
	}
}

// unprivilegedFenceTests are re-run as uid 65534 by
// TestFenceAsAnUnprivilegedUser: there the fence's user namespace is an
// unprivileged one, whose init gets its capabilities only as ambient ones.
const unprivilegedFenceTests = "^(TestFenceAttacks|TestFenceKillEndsEveryProcessInIt|TestFencePassesExitCodesAndSignals|TestFenceRefusedWithoutUserNamespaces|TestFenceCanaryIsRedAndEndsTheFence)$"

// TestFenceAsAnUnprivilegedUser runs the fence tests again as nobody
// (setpriv), daemon, keyring and all, when this run is root as in CI. Run
// by a non-root user, the fence tests above already are the unprivileged
// run, and this one checks that they were.
func TestFenceAsAnUnprivilegedUser(t *testing.T) {
	if os.Getuid() != 0 {
		if os.Getenv("TOKFENCE_TEST_BIN") == "" && testing.Verbose() {
			t.Logf("this run is uid %d: the fence tests above ran unprivileged", os.Getuid())
		}
		return
	}
	dir, err := os.MkdirTemp("", "tfunpriv")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	os.Chmod(dir, 0o755)
	self := probeBinary(t, dir)
	cmd := exec.Command("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
		self, "-test.run", unprivilegedFenceTests, "-test.v", "-test.count=1", "-test.timeout=10m")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "TMPDIR=/tmp", "TOKFENCE_TEST_BIN=" + binPath,
		"TOKFENCE_REQUIRE_KEYRING=1", "GORACE=halt_on_error=1 atexit_sleep_ms=0"}
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	t.Logf("as uid 65534:\n%s", lastLines(string(out), 40))
	if err != nil {
		t.Fatalf("the fence tests failed as an unprivileged user: %v", err)
	}
	for _, name := range strings.Split(strings.Trim(unprivilegedFenceTests, "^()$"), "|") {
		if !strings.Contains(string(out), "--- PASS: "+name+" ") {
			t.Errorf("as uid 65534, %s did not pass", name)
		}
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
