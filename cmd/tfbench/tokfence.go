package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/tokfence/tokfence/daemon/api"
	"github.com/tokfence/tokfence/daemon/ctl"
)

// fakeKey is the provider key the run stores: shaped like an OpenAI key,
// valid nowhere. The fake upstream never checks it.
const fakeKey = "sk-proj-FAKEbench0123456789abcdefghijklmnopqrstuvwxyzABCD"

// buildTokfence compiles ./cmd/tokfence into dir and returns the binary.
func buildTokfence(ctx context.Context, dir string) (string, error) {
	bin := filepath.Join(dir, "tokfence")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/tokfence")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go build ./cmd/tokfence (run tfbench from the module root): %w", err)
	}
	return bin, nil
}

// tokfence is one running daemon, a real separate process, and what the
// harness needs to drive it.
type tokfence struct {
	name    string
	bin     string
	dir     string // config, state, socket and log live here
	socket  string
	config  string
	kr      *keyring
	proc    *child
	pid     int
	tcp     string // host:port, from `tokfence status --json`
	token   string
	session string
	idleRSS int64 // KiB, right after start and grant
	ctl     *ctl.Client
}

// auditFsync is what a daemon's config file says about audit_fsync.
type auditFsync int

const (
	fsyncDefault auditFsync = iota // no audit_fsync line: whatever the daemon defaults to ("interval")
	fsyncOff                       // audit_fsync = "never"
	fsyncOn                        // audit_fsync = "always"
)

// daemonConfig is the config file of a bench daemon: its own state
// directory, the openai provider at the fake upstream, and an audit_fsync
// line unless f is fsyncDefault.
func daemonConfig(stateDir, upstream string, f auditFsync) string {
	var b strings.Builder
	fmt.Fprintf(&b, "state_dir = %q\n", stateDir)
	switch f {
	case fsyncOff:
		b.WriteString("audit_fsync = \"never\"\n")
	case fsyncOn:
		b.WriteString("audit_fsync = \"always\"\n")
	}
	fmt.Fprintf(&b, "\n[providers.openai]\nbase_url = %q\n", upstream)
	return b.String()
}

// startTokfence writes a config whose openai provider points at the fake
// upstream, stores the fake key with `tokfence key set`, starts `tokfence
// daemon`, waits until it answers, and mints the bench token.
func startTokfence(ctx context.Context, r *reaper, kr *keyring, bin, dir, name, upstream string, fsync auditFsync) (*tokfence, error) {
	t := &tokfence{name: name, bin: bin, dir: filepath.Join(dir, name), kr: kr}
	t.socket = filepath.Join(kr.Home, "run", name, "tf.sock")
	t.config = filepath.Join(t.dir, "config.toml")
	if err := os.MkdirAll(t.dir, 0o700); err != nil {
		return nil, err
	}
	cfg := daemonConfig(filepath.Join(t.dir, "state"), upstream, fsync)
	if err := os.WriteFile(t.config, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	if _, err := t.cli(ctx, fakeKey+"\n", "key", "set", "openai"); err != nil {
		return nil, err
	}
	if err := t.startDaemon(ctx, r); err != nil {
		return nil, err
	}
	if err := t.discover(ctx); err != nil {
		return nil, err
	}
	rss, _, _, err := procStatus(t.pid)
	t.idleRSS = rss
	return t, err
}

func (t *tokfence) startDaemon(ctx context.Context, r *reaper) error {
	logf, err := os.Create(filepath.Join(t.dir, "daemon.log"))
	if err != nil {
		return err
	}
	r.later(func() { logf.Close() })
	cmd := exec.Command(t.bin, "daemon", "--socket", t.socket, "--tcp", "127.0.0.1:0", "--config", t.config)
	cmd.Env = t.kr.childEnv("GOTRACEBACK=all") // a SIGQUIT dump lists every goroutine
	cmd.Stdout, cmd.Stderr = logf, logf
	t.proc, err = r.start("tokfence daemon "+t.name, cmd, 10*time.Second)
	if err != nil {
		return err
	}
	t.pid = t.proc.pid()
	t.ctl = ctl.New(t.socket)
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if t.proc.exited() {
			return fmt.Errorf("tokfence daemon %s exited at start: %v; log:\n%s", t.name, t.proc.err, t.logTail(2000))
		}
		if _, err := t.ctl.Status(ctx); err == nil {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("tokfence daemon %s did not answer on %s within 30s; log:\n%s", t.name, t.socket, t.logTail(2000))
}

// discover reads the TCP address from `tokfence status --json` and mints
// the bench token with `tokfence grant`, as a user would.
func (t *tokfence) discover(ctx context.Context) error {
	out, err := t.cli(ctx, "", "status", "--json")
	if err != nil {
		return err
	}
	var st struct {
		TCP string `json:"tcp"`
		PID int    `json:"pid"`
	}
	if err := json.Unmarshal(out, &st); err != nil || st.TCP == "" {
		return fmt.Errorf("tokfence status --json: no tcp address in %q (%v)", out, err)
	}
	t.tcp = st.TCP
	out, err = t.cli(ctx, "", "grant", "--agent", "bench", "--provider", "openai", "--ttl", "1h", "--format", "json")
	if err != nil {
		return err
	}
	var g api.Grant
	if err := json.Unmarshal(out, &g); err != nil || g.Token == "" {
		return fmt.Errorf("tokfence grant: no token in reply (%v)", err)
	}
	t.token, t.session = g.Token, g.Session
	return nil
}

// cli runs `tokfence --socket S --config C args...` with stdin.
func (t *tokfence) cli(ctx context.Context, stdin string, args ...string) ([]byte, error) {
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(cctx, t.bin, append([]string{"--socket", t.socket, "--config", t.config}, args...)...)
	cmd.Env = t.kr.childEnv()
	cmd.Stdin = strings.NewReader(stdin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("tokfence %s: %w: %s", strings.Join(args[:min(2, len(args))], " "), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

// grant is the part of the control API's grant reply the harness uses.
// newSession mints a fresh session through the control API on the socket.
func (t *tokfence) newSession(ctx context.Context) (*api.Grant, error) {
	return t.ctl.Grant(ctx, api.GrantRequest{Agent: "bench-kill", Providers: []string{"openai"}, TTL: "1h"})
}

// kill revokes session sid through the control API: POST /v1/kill.
func (t *tokfence) kill(ctx context.Context, sid string) error {
	_, err := t.ctl.Kill(ctx, api.KillRequest{Session: sid})
	return err
}

// countGoroutines sends the daemon SIGQUIT (GOTRACEBACK=all is in its
// environment), which makes the Go runtime print every goroutine and exit,
// and counts the "goroutine N [" headers in its log. It ends the daemon, so
// it is the last thing done to it.
func (t *tokfence) countGoroutines() (int, error) {
	logPath := filepath.Join(t.dir, "daemon.log")
	before, _ := os.Stat(logPath)
	if err := t.proc.cmd.Process.Signal(syscall.SIGQUIT); err != nil {
		return 0, err
	}
	select {
	case <-t.proc.done:
	case <-time.After(20 * time.Second):
		return 0, errors.New("daemon did not exit within 20s of SIGQUIT")
	}
	b, err := os.ReadFile(logPath)
	if err != nil {
		return 0, err
	}
	if before != nil && before.Size() <= int64(len(b)) {
		b = b[before.Size():]
	}
	n := 0
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "goroutine ") && strings.HasSuffix(strings.TrimSpace(l), ":") {
			n++
		}
	}
	if n == 0 {
		return 0, errors.New("no goroutine dump in the daemon log")
	}
	return n, nil
}

func (t *tokfence) logTail(n int) string {
	b, _ := os.ReadFile(filepath.Join(t.dir, "daemon.log"))
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// unixTransport dials the daemon's socket whatever the URL says.
func unixTransport(socket string, idle int) *http.Transport {
	return &http.Transport{
		Proxy: nil,
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", socket)
		},
		MaxIdleConns: idle, MaxIdleConnsPerHost: idle, DisableCompression: true,
		IdleConnTimeout: 90 * time.Second,
	}
}
