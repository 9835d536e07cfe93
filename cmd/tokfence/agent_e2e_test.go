package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tokfence/tokfence/keystore/keystoretest"
)

// agentEnv is a CLI environment with the openai and anthropic keys stored
// and a config pointing openai, anthropic and gemini at the fake provider.
func agentEnv(t testing.TB) (*cliEnv, *fakeProvider, *keystoretest.Env) {
	kr := keystoretest.Start(t)
	e := newCLIEnv(t, kr)
	fp := newFakeProvider(t)
	cfgDir := filepath.Join(e.home, ".config", "tokfence")
	os.MkdirAll(cfgDir, 0o700)
	cfg := "audit_fsync = false\n"
	for _, p := range []string{"openai", "anthropic", "gemini"} {
		cfg += fmt.Sprintf("[providers.%s]\nbase_url = %q\n", p, fp.URL)
	}
	if err := os.WriteFile(filepath.Join(cfgDir, "config.toml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	e.storeKey("openai", testOpenAIKey)
	e.storeKey("anthropic", testAnthropicKey)
	return e, fp, kr
}

// storeKey runs `tokfence key set provider` with key on stdin. agentEnv
// stores the openai and anthropic keys; a test that calls Gemini stores
// its key itself (each CLI run of the race build costs a second at exit).
func (e *cliEnv) storeKey(provider, key string) {
	e.t.Helper()
	if r := e.run(key, "key", "set", provider); r.code != 0 {
		e.t.Fatalf("key set %s: %+v", provider, r)
	}
}

func TestExecRunsAnAgentAndKillsItsSessionAfter(t *testing.T) {
	e, fp, _ := agentEnv(t)
	e.startDaemon("--tcp", "127.0.0.1:0")
	e.env = append(e.env, "OPENAI_API_KEY=sk-REAL-parent-key-must-not-reach-the-child")
	script := `echo "key=$OPENAI_API_KEY"; echo "base=$OPENAI_BASE_URL"; echo "sid=$TOKFENCE_SESSION";
		echo "canary=${ANTHROPIC_ADMIN_KEY:+set}";
		curl -s -o /dev/null -w "status=%{http_code}\n" -H "Authorization: Bearer $OPENAI_API_KEY" \
		  -H "Content-Type: application/json" -d '{"model":"gpt-4o-mini","messages":[]}' "$OPENAI_BASE_URL/chat/completions";
		exit 3`
	r := e.run("", "exec", "--agent", "shell", "--provider", "openai", "--", "sh", "-c", script)
	if r.code != 3 {
		t.Fatalf("exec exit = %d, want the child's 3: %+v", r.code, r)
	}
	vars := map[string]string{}
	for _, l := range strings.Split(r.stdout, "\n") {
		if k, v, ok := strings.Cut(l, "="); ok {
			vars[k] = v
		}
	}
	if strings.Contains(vars["key"], "REAL") || !strings.HasPrefix(vars["key"], "ey") || !strings.HasSuffix(vars["base"], "/openai/v1") || vars["sid"] == "" {
		t.Fatalf("child env = %v", vars)
	}
	if vars["status"] != "200" || vars["canary"] != "set" {
		t.Fatalf("child's request = %q, canary %q; want 200 and a canary planted", vars["status"], vars["canary"])
	}
	auths, _ := fp.seen()
	if len(auths) != 1 || auths[0] != "Bearer "+testOpenAIKey {
		t.Fatalf("upstream credentials = %q, want only the real key", auths)
	}
	// After the child exits the token is dead (asked on the daemon's TCP
	// listener: the base URL points at the fence's own loopback).
	var st struct{ TCP string }
	json.Unmarshal([]byte(e.run("", "status", "--json").stdout), &st)
	cmd := exec.Command("curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-H", "Authorization: Bearer "+vars["key"],
		"-d", "{}", "http://"+st.TCP+"/openai/v1/chat/completions")
	out, _ := cmd.Output()
	if string(out) != "401" {
		t.Fatalf("token after exec ended = %s, want 401", out)
	}
	r = e.run("", "usage", "--by", "agent", "--json")
	if r.code != 0 || !strings.Contains(r.stdout, `"key": "shell"`) || !strings.Contains(r.stdout, `"input_tokens": 3`) || !strings.Contains(r.stdout, `"output_tokens": 4`) {
		t.Fatalf("usage --by agent = %+v, want the shell agent's 3 in / 4 out", r)
	}
	if r := e.run("", "sessions", "--json"); r.code != 0 || strings.Contains(r.stdout, vars["sid"]) {
		t.Fatalf("session still listed after exec (killed sessions leave the live list): %+v", r)
	}
}

func TestGrantSessionsKillFromTheCLI(t *testing.T) {
	e, _, _ := agentEnv(t)
	e.startDaemon("--tcp", "127.0.0.1:0")
	r := e.run("", "grant", "--agent", "coder", "--provider", "openai", "--model", "gpt-4o*", "--ttl", "30m", "--format", "json")
	var g struct {
		Token, Session string
		Env            map[string]string
	}
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &g) != nil || g.Token == "" || g.Env["OPENAI_BASE_URL"] == "" {
		t.Fatalf("grant --format json = %+v", r)
	}
	if r := e.run("", "grant", "--agent", "coder", "--provider", "openai", "--format", "env"); r.code != 0 ||
		!strings.Contains(r.stdout, "export OPENAI_API_KEY='ey") || !strings.Contains(r.stdout, "export OPENAI_BASE_URL='http://127.0.0.1:") {
		t.Fatalf("grant --format env = %+v", r)
	}
	if r := e.run("", "grant", "--agent", "coder", "--provider", "openai", "--ttl", "48h"); r.code != 1 || !strings.Contains(r.stderr, "ttl") {
		t.Fatalf("grant over max ttl = %+v", r)
	}
	r = e.run("", "sessions")
	if r.code != 0 || !strings.Contains(r.stdout, g.Session) || !strings.Contains(r.stdout, "GREEN") || !strings.Contains(r.stdout, "coder") {
		t.Fatalf("sessions = %+v", r)
	}
	if r := e.run("", "kill", g.Session); r.code != 0 || !strings.Contains(r.stdout, g.Session) {
		t.Fatalf("kill = %+v", r)
	}
	if r := e.run("", "kill", "--agent", "coder"); r.code != 0 {
		t.Fatalf("kill --agent = %+v", r)
	}
	if r := e.run("", "kill", "--all"); r.code != 0 || !strings.Contains(r.stdout, "every token issued before now is dead") {
		t.Fatalf("kill --all = %+v", r)
	}
	if r := e.run("", "kill"); r.code != 1 || !strings.Contains(r.stderr, "exactly one") {
		t.Fatalf("kill with nothing = %+v", r)
	}
	// curl over the socket, as documented.
	out, err := exec.Command("curl", "-s", "--unix-socket", e.socket, "http://tokfence/v1/status").Output()
	if err != nil || !strings.Contains(string(out), `"strict":true`) {
		t.Fatalf("curl --unix-socket status = %s, %v", out, err)
	}
	tok := e.run("", "grant", "--agent", "curl", "--provider", "anthropic").stdout
	out, err = exec.Command("curl", "-s", "--unix-socket", e.socket, "-H", "x-api-key: "+strings.TrimSpace(tok),
		"-H", "anthropic-version: 2023-06-01", "-d", `{"model":"claude-3-5-haiku-latest","max_tokens":8,"messages":[]}`,
		"http://tokfence/anthropic/v1/messages").Output()
	if err != nil || !strings.Contains(string(out), "hello from anthropic") {
		t.Fatalf("curl --unix-socket messages = %s, %v", out, err)
	}
}

// TestOfficialSDKsWorkUnmodified runs the official openai, @anthropic-ai/sdk
// (chat and streaming each) and @google/genai npm packages inside a fence,
// with nothing but the env vars `tokfence exec` sets: through the
// forwarder and the agent socket, the daemon has no TCP listener at all.
func TestOfficialSDKsWorkUnmodified(t *testing.T) {
	sdkDir := sdkModules(t)
	e, fp, _ := fenceEnv(t, sdkDir) // a checkout below /tmp would be covered otherwise
	e.storeKey("gemini", testGeminiKey)
	e.startDaemon()
	r := e.run("", "exec", "--agent", "sdk", "--provider", "openai", "--provider", "anthropic", "--provider", "gemini", "--", "node", filepath.Join(sdkDir, "run.mjs"))
	if r.code != 0 {
		t.Fatalf("node SDK run = %+v", r)
	}
	var got struct {
		Chat, Stream, Messages, MessagesStream, Generate string
		Chunks                                           int
	}
	if err := json.Unmarshal([]byte(strings.TrimSpace(r.stdout)), &got); err != nil {
		t.Fatalf("SDK output %q: %v", r.stdout, err)
	}
	if got.Chat != "hello from openai" || got.Stream != "Hello world" || got.Chunks != 3 || got.Messages != "hello from anthropic" || got.MessagesStream != fakeStreamText || got.Generate != "hello from gemini" {
		t.Fatalf("SDK results = %+v", got)
	}
	auths, paths := fp.seen()
	for _, a := range auths {
		if a != "Bearer "+testOpenAIKey && a != testAnthropicKey && a != testGeminiKey {
			t.Fatalf("upstream saw credential %q, want only the real keys (never the token)", a)
		}
	}
	if len(paths) != 5 {
		t.Fatalf("upstream paths = %v, want 5 calls", paths)
	}
}

// TestExecSessionDiesWithExecEvenOnSIGKILL kills the exec process itself
// with SIGKILL, so it cannot clean up: the daemon, which watches the pid it
// read from the socket's peer credentials, must kill the session anyway.
func TestExecSessionDiesWithExecEvenOnSIGKILL(t *testing.T) {
	e, _, _ := agentEnv(t)
	e.startDaemon("--tcp", "127.0.0.1:0")
	cmd := exec.Command(binPath, "exec", "--agent", "doomed", "--provider", "openai", "--", "sleep", "60")
	cmd.Env = e.env
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	waitFor(t, "the session to appear", func() bool { return strings.Contains(e.run("", "sessions").stdout, "doomed") })
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	waitFor(t, "the daemon to kill the orphaned session", func() bool {
		return !strings.Contains(e.run("", "sessions").stdout, "doomed")
	})
}

func TestExecPassesSignalsAndExitCodes(t *testing.T) {
	e, _, _ := agentEnv(t)
	e.startDaemon("--tcp", "127.0.0.1:0")
	termTrappedAgent(t, e, func() {
		waitFor(t, "the session to appear", func() bool { return strings.Contains(e.run("", "sessions").stdout, "sig") })
	}, "--no-fence")
	// A command that does not exist is 127, as in a shell (fenced:
	// TestFencePassesExitCodesAndSignals).
	r := e.run("", "exec", "--no-fence", "--agent", "x", "--provider", "openai", "--", "no-such-command-tokfence")
	if r.code != 127 || !strings.Contains(r.stderr, "tokfence: error: start no-such-command-tokfence") {
		t.Fatalf("--no-fence, a command that does not exist = %+v, want 127 and the reason", r)
	}
}

// termTrappedAgent runs exec (with extra flags first) around an agent
// that traps SIGTERM and exits 42, sends exec SIGTERM once the agent says
// its trap is set (and ready, if given, has returned), and fails unless
// exec ends with the agent's 42. A signal sent before the trap is set
// would rightly end sh with 143, which is no fault of exec.
func termTrappedAgent(t *testing.T, e *cliEnv, ready func(), flags ...string) {
	t.Helper()
	args := append([]string{"exec"}, flags...)
	args = append(args, "--agent", "sig", "--provider", "openai", "--", "sh", "-c", `trap 'exit 42' TERM; echo trapped; while :; do sleep 0.05; done`)
	cmd := exec.Command(binPath, args...)
	cmd.Env = e.env
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if line, err := bufio.NewReader(out).ReadString('\n'); err != nil || line != "trapped\n" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("the agent's first line = %q, %v; want trapped", line, err)
	}
	if ready != nil {
		ready()
	}
	cmd.Process.Signal(syscall.SIGTERM)
	io.Copy(io.Discard, out) // to its end: Wait must come after the last read
	err = cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 42 {
		t.Fatalf("exec %v after SIGTERM = %v, want the agent's trap exit 42", flags, err)
	}
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestAgentUnderExecCannotUseTheControlAPI: an unfenced agent runs as the
// user, so it can reach the socket; the daemon refuses its control requests
// because it descends from a bound exec, even when it double-forks away.
// (A fenced agent cannot reach the control socket at all: TestFenceAttacks.)
func TestAgentUnderExecCannotUseTheControlAPI(t *testing.T) {
	e, _, _ := agentEnv(t)
	e.startDaemon("--tcp", "127.0.0.1:0")
	script := binPath + ` grant --agent escape --provider openai; echo "grant=$?";
		` + binPath + ` kill --all; echo "kill=$?";
		( ( ` + binPath + ` sessions >/dev/null 2>&1; echo "orphan=$?" > "$HOME/orphan" ) & ); sleep 1`
	r := e.run("", "exec", "--no-fence", "--agent", "jailed", "--provider", "openai", "--", "sh", "-c", script)
	if !strings.Contains(r.stdout, "grant=1") || !strings.Contains(r.stdout, "kill=1") || !strings.Contains(r.stderr, "not served to processes running under `tokfence exec`") {
		t.Fatalf("an agent used the control API: %+v", r)
	}
	waitFor(t, "the orphan's result", func() bool { b, _ := os.ReadFile(filepath.Join(e.home, "orphan")); return len(b) > 0 })
	if b, _ := os.ReadFile(filepath.Join(e.home, "orphan")); strings.TrimSpace(string(b)) != "orphan=1" {
		t.Fatalf("a double-forked agent process used the control API: %s", b)
	}
	if r := e.run("", "sessions"); r.code != 0 {
		t.Fatalf("the user outside exec lost the control API: %+v", r)
	}
}

// TestExecChildSeesNoParentCredential runs exec, fenced and not, from a
// shell holding the user's own credentials: the child must see none of
// them, and the session's token as both ANTHROPIC_API_KEY and
// ANTHROPIC_AUTH_TOKEN (Claude Code sends a stale parent token alongside
// the key otherwise, and is refused for two credentials).
func TestExecChildSeesNoParentCredential(t *testing.T) {
	e, _, _ := fenceEnv(t)
	e.startDaemon("--tcp", "127.0.0.1:0")
	parent := map[string]string{
		"ANTHROPIC_AUTH_TOKEN": "sk-ant-oat01-PARENT-auth-token", "OPENAI_API_KEY": "sk-PARENT-openai-key",
		"GITHUB_TOKEN": "ghp_PARENTgithubtoken", "GH_TOKEN": "gho_PARENT", "HF_TOKEN": "hf_PARENT",
		"AWS_SECRET_ACCESS_KEY": "PARENT/aws/secret", "AZURE_CLIENT_SECRET": "PARENT-azure",
		"GOOGLE_APPLICATION_CREDENTIALS": "/PARENT/sa.json", "ANTHROPIC_BASE_URL": "https://PARENT.example",
	}
	env := append([]string(nil), e.env...)
	for k, v := range parent {
		env = append(env, k+"="+v)
	}
	for _, mode := range [][]string{nil, {"--no-fence"}} {
		args := append(append([]string{"exec", "--agent", "envcheck", "--provider", "anthropic", "--provider", "openai"}, mode...), "--", "env")
		saved := e.env
		e.env = env
		r := e.run("", args...)
		e.env = saved
		if r.code != 0 {
			t.Fatalf("exec %v env = %+v", mode, r)
		}
		got := map[string]string{}
		for _, l := range strings.Split(r.stdout, "\n") {
			if k, v, ok := strings.Cut(l, "="); ok {
				got[k] = v
			}
		}
		if strings.Contains(r.stdout, "PARENT") {
			t.Errorf("exec %v: a parent credential reached the child:\n%s", mode, r.stdout)
		}
		for _, k := range []string{"GITHUB_TOKEN", "GH_TOKEN", "HF_TOKEN", "AWS_SECRET_ACCESS_KEY", "AZURE_CLIENT_SECRET", "GOOGLE_APPLICATION_CREDENTIALS"} {
			if _, ok := got[k]; ok {
				t.Errorf("exec %v: the child has %s", mode, k)
			}
		}
		tok := got["ANTHROPIC_API_KEY"]
		if !strings.HasPrefix(tok, "ey") || got["ANTHROPIC_AUTH_TOKEN"] != tok || got["OPENAI_API_KEY"] != tok {
			t.Errorf("exec %v: ANTHROPIC_API_KEY %q, ANTHROPIC_AUTH_TOKEN %q, OPENAI_API_KEY %q: want the session's token in all three",
				mode, tok, got["ANTHROPIC_AUTH_TOKEN"], got["OPENAI_API_KEY"])
		}
	}
}
