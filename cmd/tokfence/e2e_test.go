package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tokfence/tokfence/keystore/keystoretest"
)

// binPath is the tokfence binary built once by TestMain; the CLI is tested
// end to end by running it, as a user would.
var binPath string

func TestMain(m *testing.M) {
	switch os.Getenv(probeEnv) {
	case "1":
		os.Exit(runFenceProbe()) // this binary is the agent inside a fence
	case "tiocsti":
		os.Exit(runTIOCSTI()) // a child of the probe, on a pty of its own
	case "bench":
		os.Exit(runRequestBench()) // the agent of BenchmarkExec's request runs
	}
	if bin := os.Getenv("TOKFENCE_TEST_BIN"); bin != "" {
		binPath = bin // a re-run as another uid (TestFenceAsAnUnprivilegedUser) reuses the parent's build
		os.Exit(m.Run())
	}
	dir, err := os.MkdirTemp("", "tfbin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Chmod(dir, 0o755)
	binPath = filepath.Join(dir, "tokfence")
	out, err := exec.Command("go", "build", "-race", "-o", binPath, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build tokfence: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// cliEnv is an isolated user environment: its own HOME, XDG dirs, socket
// and (optionally) private keyring.
type cliEnv struct {
	t      testing.TB
	env    []string
	home   string
	socket string
	mu     sync.Mutex
	output bytes.Buffer // everything every command printed, for the leak scan
}

func newCLIEnv(t testing.TB, keyring *keystoretest.Env) *cliEnv {
	t.Helper()
	home, err := os.MkdirTemp("", "tfh")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(home) })
	e := &cliEnv{t: t, home: home, socket: filepath.Join(home, "run", "tokfence", "tokfence.sock")}
	e.env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home,
		"XDG_CONFIG_HOME=" + filepath.Join(home, ".config"),
		"XDG_STATE_HOME=" + filepath.Join(home, ".local", "state"),
		"XDG_RUNTIME_DIR=" + filepath.Join(home, "run"),
		"GORACE=halt_on_error=1 atexit_sleep_ms=0",
	}
	if keyring != nil {
		e.env = append(e.env, "DBUS_SESSION_BUS_ADDRESS="+keyring.Address,
			"XDG_DATA_HOME="+filepath.Join(keyring.Home, ".local", "share"))
	} else {
		e.env = append(e.env, "DBUS_SESSION_BUS_ADDRESS=disabled:")
	}
	return e
}

type result struct {
	code           int
	stdout, stderr string
}

func (e *cliEnv) run(stdin string, args ...string) result {
	e.t.Helper()
	return e.runWithin(30*time.Second, stdin, args...)
}

// runWithin is run with a deadline of its own, for a command that does
// much: under -race, beside the rest of the suite on two cores, the fenced
// probe's attacks have taken over 30 s (12 s alone).
func (e *cliEnv) runWithin(d time.Duration, stdin string, args ...string) result {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	cmd := exec.CommandContext(ctx, binPath, args...)
	cmd.Env = e.env
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		e.t.Fatalf("run %v: %v", args, err)
	}
	e.mu.Lock()
	e.output.WriteString(r.stdout + r.stderr)
	e.mu.Unlock()
	return r
}

// startDaemon runs `tokfence daemon` and waits until status answers.
func (e *cliEnv) startDaemon(args ...string) (stop func() string) {
	e.t.Helper()
	cmd := exec.Command(binPath, append([]string{"daemon"}, args...)...)
	cmd.Env = e.env
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	deadline := time.Now().Add(15 * time.Second)
	for {
		if r := e.run("", "status"); r.code == 0 {
			break
		}
		select {
		case err := <-done:
			e.t.Fatalf("daemon exited early: %v\n%s", err, logs.String())
		default:
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			e.t.Fatalf("daemon not ready:\n%s", logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	stopped := false
	stop = func() string {
		if !stopped {
			stopped = true
			cmd.Process.Signal(syscall.SIGTERM)
			select {
			case err := <-done:
				if err != nil {
					e.t.Errorf("daemon exit after SIGTERM: %v\n%s", err, logs.String())
				}
			case <-time.After(10 * time.Second):
				cmd.Process.Kill()
				e.t.Errorf("daemon did not stop on SIGTERM")
			}
			e.mu.Lock()
			e.output.Write(logs.Bytes())
			e.mu.Unlock()
		}
		return logs.String()
	}
	e.t.Cleanup(func() { stop() })
	return stop
}

const (
	testOpenAIKey    = "sk-proj-E2Etest0123456789abcdefghijklmnopqrstuvWXYZ"
	testAnthropicKey = "sk-ant-api03-E2Etest0123456789abcdefghijklmnopqrstuv-AAAA"
	testGeminiKey    = "AIzaSyE2Etest0123456789abcdefghijklmnop"
)

func TestCLIEndToEnd(t *testing.T) {
	kr := keystoretest.Start(t)
	e := newCLIEnv(t, kr)
	start := time.Now()

	if r := e.run(testOpenAIKey+"\n", "key", "set", "openai"); r.code != 0 || !strings.Contains(r.stdout, "sk-proj-…WXYZ") ||
		strings.Contains(r.stdout+r.stderr, "daemon") {
		t.Fatalf("key set openai, no daemon running = %+v", r)
	}
	if r := e.run(testAnthropicKey, "key", "set", "anthropic"); r.code != 0 {
		t.Fatalf("key set anthropic = %+v", r)
	}
	stop := e.startDaemon("--log-level", "debug")

	r := e.run("", "status", "--json")
	var st struct {
		Socket   string   `json:"socket"`
		Keys     []string `json:"keys"`
		Keychain string   `json:"keychain"`
		Strict   bool     `json:"strict"`
	}
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &st) != nil {
		t.Fatalf("status --json = %+v", r)
	}
	if st.Socket != e.socket || strings.Join(st.Keys, ",") != "anthropic,openai" || st.Keychain != "ok" || !st.Strict {
		t.Fatalf("status = %+v, want both keys, keychain ok, strict, socket %s", st, e.socket)
	}
	if r := e.run("", "status"); r.code != 0 || !strings.Contains(r.stdout, "own uid only") {
		t.Fatalf("status = %+v, want the uid policy", r)
	}
	r = e.run("", "key", "ls")
	if r.code != 0 || !strings.Contains(r.stdout, "sk-proj-…WXYZ") || !strings.Contains(r.stdout, "sk-ant-…AAAA") {
		t.Fatalf("key ls = %+v", r)
	}
	if r := e.run("", "key", "rm", "openai"); r.code != 0 || !strings.Contains(r.stdout, "the running daemon stops using it from its next request") {
		t.Fatalf("key rm with the daemon running = %+v", r)
	}
	if r := e.run("", "status", "--json"); !strings.Contains(r.stdout, `"anthropic"`) || strings.Contains(r.stdout, `"openai"`) {
		t.Fatalf("status after rm = %+v", r)
	}
	if r := e.run("", "key", "rm", "openai"); r.code != 1 || !strings.Contains(r.stderr, "tokfence: error: no openai key is stored") {
		t.Fatalf("second key rm = %+v", r)
	}
	r = e.run("sk-whatever-123456789", "key", "set", "nosuchprovider")
	if r.code != 1 || !strings.Contains(r.stderr, `tokfence: error: unknown provider "nosuchprovider"`) || !strings.Contains(r.stderr, "tokfence: hint: known providers:") {
		t.Fatalf("key set unknown provider = %+v", r)
	}
	if r := e.run("", "key", "set", "openai", "sk-on-the-command-line"); r.code != 1 || !strings.Contains(r.stderr, "never taken from the command line") {
		t.Fatalf("key on argv = %+v", r)
	}
	if r := e.run("", "daemon"); r.code != 1 || !strings.Contains(r.stderr, "already running") {
		t.Fatalf("second daemon = %+v", r)
	}
	logs := stop()
	if _, err := os.Stat(e.socket); !os.IsNotExist(err) {
		t.Fatalf("socket left after SIGTERM: %v\n%s", err, logs)
	}
	secrets := [][]byte{[]byte(testOpenAIKey), []byte(testAnthropicKey)}
	keystoretest.AssertNoLeakIn(t, "CLI and daemon output", e.output.Bytes(), secrets)
	keystoretest.AssertNoLeaks(t, secrets, start, []string{filepath.Join(kr.Home, ".local", "share", "keyrings")}, e.home, kr.Home)
}

// TestCLIKeychainUnreachable runs with no D-Bus at all: every command that
// needs the keychain must fail with the cause and the fix, and the key must
// not land in any file.
func TestCLIKeychainUnreachable(t *testing.T) {
	e := newCLIEnv(t, nil)
	start := time.Now().Add(-time.Second)
	const key = "sk-proj-UNREACHABLEtest0123456789abcdefghijklmnop"
	r := e.run(key+"\n", "key", "set", "openai")
	if r.code != 1 || !strings.Contains(r.stderr, "keychain unavailable") ||
		!strings.Contains(r.stderr, "no D-Bus session bus") || !strings.Contains(r.stderr, "tokfence: hint:") {
		t.Fatalf("key set without keychain = %+v", r)
	}
	if r := e.run("", "daemon"); r.code != 1 || !strings.Contains(r.stderr, "keychain unavailable") {
		t.Fatalf("daemon without keychain = %+v", r)
	}
	if r := e.run("", "key", "ls"); r.code != 0 {
		t.Fatalf("key ls with an empty index should not need the keychain: %+v", r)
	}
	secrets := [][]byte{[]byte(key)}
	keystoretest.AssertNoLeakIn(t, "output", e.output.Bytes(), secrets)
	keystoretest.AssertNoLeaks(t, secrets, start, nil, e.home, os.TempDir())
}
