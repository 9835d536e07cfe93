package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/tokfence/tokfence/keystore/keystoretest"
)

// TestScripts runs the CLI stories in testdata/script/*.txtar, as age does:
// each script is a user's session at a shell, with its own HOME, XDG
// directories and socket, the race-built tokfence first on PATH, and no
// keyring unless it asks for one (the `keyring` command).
//
// Commands beyond testscript's own:
//
//	keyring            start a private Secret Service for this script
//	daemon [args...]   start `tokfence daemon args...` and wait until status answers
//	daemon-stop        SIGTERM the daemon and wait; its log is in $WORK/daemon.log
//	waitfor FILE RE    wait (20 s at most) until FILE matches the regexp RE: for
//	                   what a background command (exec ... &name&) writes
//	upstream           start the fake provider (fakeprovider_test.go) on 127.0.0.1;
//	                   point openai, anthropic and gemini at it in $TOKFENCE_CONFIG
//	                   (appended to, or $WORK/config.toml if unset) and write the
//	                   keys it wants to $WORK/upstream/{openai,anthropic,gemini}.key
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:                 filepath.Join("testdata", "script"),
		RequireExplicitExec: true,
		Setup:               scriptSetup,
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"keyring":     scriptKeyring,
			"daemon":      scriptDaemon,
			"daemon-stop": scriptDaemonStop,
			"upstream":    scriptUpstream,
			"waitfor":     scriptWaitFor,
		},
	})
}

// scriptEnvKeys are the variables a script's tokfence processes see; the
// daemon command passes exactly these on.
var scriptEnvKeys = []string{"PATH", "HOME", "XDG_CONFIG_HOME", "XDG_STATE_HOME", "XDG_RUNTIME_DIR",
	"XDG_DATA_HOME", "DBUS_SESSION_BUS_ADDRESS", "GORACE", "TMPDIR", "TOKFENCE_CONFIG", "TOKFENCE_TCP",
	"TOKFENCE_PRICING_FILE", "SHELL"}

func scriptSetup(env *testscript.Env) error {
	home := filepath.Join(env.WorkDir, "home")
	if err := os.MkdirAll(home, 0o700); err != nil {
		return err
	}
	env.Setenv("PATH", filepath.Dir(binPath)+string(os.PathListSeparator)+os.Getenv("PATH"))
	env.Setenv("HOME", home)
	env.Setenv("XDG_CONFIG_HOME", filepath.Join(home, ".config"))
	env.Setenv("XDG_STATE_HOME", filepath.Join(home, ".local", "state"))
	env.Setenv("XDG_DATA_HOME", filepath.Join(home, ".local", "share"))
	// sun_path is 108 bytes: the runtime dir must stay short whatever
	// testscript's work directory is.
	run, err := os.MkdirTemp("", "tfr")
	if err != nil {
		return err
	}
	env.Defer(func() { os.RemoveAll(run) })
	env.Setenv("XDG_RUNTIME_DIR", run)
	env.Setenv("DBUS_SESSION_BUS_ADDRESS", "disabled:")
	env.Setenv("GORACE", "halt_on_error=1 atexit_sleep_ms=0")
	env.Values["daemon"] = new(scriptDaemonProc)
	return nil
}

func scriptEnviron(ts *testscript.TestScript) []string {
	var env []string
	for _, k := range scriptEnvKeys {
		if v := ts.Getenv(k); v != "" {
			env = append(env, k+"="+v)
		}
	}
	return env
}

func scriptKeyring(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 0 {
		ts.Fatalf("usage: keyring")
	}
	home, err := os.MkdirTemp("", "tokfence-keyring-")
	if err != nil {
		ts.Fatalf("%v", err)
	}
	kr, stop, err := keystoretest.Launch(context.Background(), home)
	if err != nil {
		os.RemoveAll(home)
		ts.Fatalf("no Secret Service for this script (make deps installs one): %v", err)
	}
	ts.Defer(func() { stop(); os.RemoveAll(home) })
	ts.Setenv("DBUS_SESSION_BUS_ADDRESS", kr.Address)
	ts.Setenv("XDG_DATA_HOME", filepath.Join(kr.Home, ".local", "share"))
}

// scriptDaemonProc is a script's running daemon, if any.
type scriptDaemonProc struct {
	cmd  *exec.Cmd
	done chan error
	log  *os.File
}

func scriptDaemon(ts *testscript.TestScript, neg bool, args []string) {
	if neg {
		ts.Fatalf("usage: daemon [args...]")
	}
	p := ts.Value("daemon").(*scriptDaemonProc)
	if p.cmd != nil {
		ts.Fatalf("a daemon is already running in this script")
	}
	log, err := os.Create(ts.MkAbs("daemon.log"))
	if err != nil {
		ts.Fatalf("%v", err)
	}
	cmd := exec.Command(binPath, append([]string{"daemon"}, args...)...)
	cmd.Env = scriptEnviron(ts)
	cmd.Dir = ts.MkAbs(".")
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		ts.Fatalf("%v", err)
	}
	p.cmd, p.done, p.log = cmd, make(chan error, 1), log
	go func() { p.done <- cmd.Wait() }()
	ts.Defer(func() { stopScriptDaemon(ts, p) })
	deadline := time.Now().Add(20 * time.Second)
	for {
		st := exec.Command(binPath, "status")
		st.Env = cmd.Env
		if st.Run() == nil {
			return
		}
		select {
		case err := <-p.done:
			p.cmd = nil
			b, _ := os.ReadFile(log.Name())
			ts.Fatalf("daemon exited early: %v\n%s", err, b)
		default:
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			ts.Fatalf("daemon not ready after 20 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func scriptDaemonStop(ts *testscript.TestScript, neg bool, args []string) {
	p := ts.Value("daemon").(*scriptDaemonProc)
	if neg || len(args) != 0 || p.cmd == nil {
		ts.Fatalf("usage: daemon-stop, after daemon")
	}
	if err := stopScriptDaemon(ts, p); err != nil {
		ts.Fatalf("%v", err)
	}
}

// stopScriptDaemon ends p's daemon, if it still runs, with SIGTERM; a
// daemon that does not stop within 10 s, or exits non-zero, is an error.
func stopScriptDaemon(ts *testscript.TestScript, p *scriptDaemonProc) error {
	if p.cmd == nil {
		return nil
	}
	defer func() { p.cmd = nil; p.log.Close() }()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		if err != nil {
			b, _ := os.ReadFile(p.log.Name())
			return fmt.Errorf("daemon exit after SIGTERM: %v\n%s", err, tail(b, 40))
		}
		return nil
	case <-time.After(10 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("daemon did not stop on SIGTERM within 10 s")
	}
}

// tail returns the last n lines of b.
func tail(b []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

func scriptUpstream(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 0 {
		ts.Fatalf("usage: upstream")
	}
	f := startFakeProvider()
	ts.Defer(f.Close)
	cfg := ts.Getenv("TOKFENCE_CONFIG")
	if cfg == "" {
		cfg = ts.MkAbs("config.toml")
		ts.Setenv("TOKFENCE_CONFIG", cfg)
	}
	var toml strings.Builder
	for _, p := range []string{"openai", "anthropic", "gemini"} {
		fmt.Fprintf(&toml, "\n[providers.%s]\nbase_url = %q\n", p, f.URL)
	}
	cf, err := os.OpenFile(cfg, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	ts.Check(err)
	_, err = cf.WriteString(toml.String())
	ts.Check(err)
	ts.Check(cf.Close())
	dir := ts.MkAbs("upstream")
	ts.Check(os.MkdirAll(dir, 0o700))
	for p, k := range map[string]string{"openai": testOpenAIKey, "anthropic": testAnthropicKey, "gemini": testGeminiKey} {
		ts.Check(os.WriteFile(filepath.Join(dir, p+".key"), []byte(k+"\n"), 0o600))
	}
}

func scriptWaitFor(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: waitfor FILE REGEXP")
	}
	re, err := regexp.Compile("(?m)" + args[1])
	ts.Check(err)
	deadline := time.Now().Add(20 * time.Second)
	for {
		b, _ := os.ReadFile(ts.MkAbs(args[0]))
		if re.Match(b) {
			return
		}
		if time.Now().After(deadline) {
			ts.Fatalf("%s does not match %q after 20 s; it holds:\n%s", args[0], args[1], b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
