package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/tokfence/tokfence/keystore/keystoretest"
)

func TestScanExitCodesAndOutput(t *testing.T) {
	e := newCLIEnv(t, nil)
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	const known = "my-internal-secret-0123456789abcdef"
	// Shaped like a real Anthropic key (the format rule checks length and
	// charset), valid nowhere.
	const alpha = "AbC1dE2fG3hI4jK5lM6nO7pQ8rS9tU0vWxYz-_"
	var b strings.Builder
	for i := 0; b.Len() < 93; i++ {
		b.WriteByte(alpha[(i*7+3)%len(alpha)])
	}
	fakeKey := "sk-ant-api03-" + b.String() + "AA"
	leaky := write("leak.txt", "config: "+fakeKey+"\n")
	clean := write("clean.txt", "nothing to see: chatcmpl-abc123 and 123e4567-e89b-12d3-a456-426614174000\n")
	encoded := write("encoded.txt", "blob="+base64.StdEncoding.EncodeToString([]byte("xx"+known+"yy"))+"\n")
	secrets := write("secrets.txt", "# known secrets\n"+known+"\n")

	if r := e.run("", "scan", leaky); r.code != 1 || !strings.Contains(r.stdout, "anthropic") || strings.Contains(r.stdout, fakeKey) {
		t.Fatalf("scan of a leaking file = %+v, want exit 1 naming the rule and never the key", r)
	}
	if r := e.run("", "scan", clean); r.code != 0 || r.stdout != "" {
		t.Fatalf("scan of a clean file = %+v, want exit 0 and no output", r)
	}
	if r := e.run("", "scan", filepath.Join(dir, "missing.txt")); r.code != 2 || !strings.Contains(r.stderr, "tokfence: error:") {
		t.Fatalf("scan of a missing file = %+v, want exit 2", r)
	}
	if r := e.run("", "scan", encoded); r.code != 0 {
		t.Fatalf("without --secrets the known secret is not a format match: %+v", r)
	}
	r := e.run("", "scan", "--secrets", secrets, "--json", encoded)
	var hit struct{ File, Rule, Encoding, Fingerprint string }
	if r.code != 1 || json.Unmarshal([]byte(strings.SplitN(r.stdout, "\n", 2)[0]), &hit) != nil || hit.Rule != "exact" || !strings.Contains(hit.Encoding, "base64") || strings.Contains(r.stdout, known) {
		t.Fatalf("scan --secrets --json of a base64'd known secret = %+v (%+v)", r, hit)
	}
	if r := e.run(fakeKey+"\n", "scan"); r.code != 1 {
		t.Fatalf("scan of stdin = %+v, want exit 1", r)
	}
}

func TestPolicyCheckAndAuditVerifyFromTheCLI(t *testing.T) {
	e, _, _ := agentEnv(t)
	good, _ := filepath.Abs("../../testdata/policy/example.toml")
	bad, _ := filepath.Abs("../../testdata/policy/bad-state.toml")
	if r := e.run("", "policy", "check", good); r.code != 0 || !strings.Contains(r.stdout, "ok") {
		t.Fatalf("policy check of the example = %+v", r)
	}
	if r := e.run("", "policy", "check", bad); r.code != 1 || !strings.Contains(r.stderr, "bad-state.toml:") || !strings.Contains(r.stderr, "PURPLE") {
		t.Fatalf("policy check of a bad file = %+v, want a line-numbered error", r)
	}
	stop := e.startDaemon("--tcp", "127.0.0.1:0")
	e.run("", "grant", "--agent", "a", "--provider", "openai")
	stop()
	if r := e.run("", "audit", "verify"); r.code != 0 || !strings.Contains(r.stdout, "intact") {
		t.Fatalf("audit verify = %+v", r)
	}
	if r := e.run("", "audit", "--event", "grant"); r.code != 0 || !strings.Contains(r.stdout, "grant") || !strings.Contains(r.stdout, "agent=a") {
		t.Fatalf("audit --event grant = %+v", r)
	}
	files, _ := filepath.Glob(filepath.Join(e.home, ".local", "state", "tokfence", "audit", "audit-*.jsonl"))
	if len(files) == 0 {
		t.Fatal("no audit file")
	}
	b, _ := os.ReadFile(files[0])
	edited := strings.Replace(string(b), `"agent":"a"`, `"agent":"b"`, 1)
	if edited == string(b) {
		t.Fatal("grant record not found to edit")
	}
	os.WriteFile(files[0], []byte(edited), 0o600)
	if r := e.run("", "audit", "verify"); r.code != 1 || !strings.Contains(r.stderr, "audit trail broken at") {
		t.Fatalf("audit verify after an edit = %+v, want the broken record named", r)
	}
}

// TestGlobalFlagsWorkInEitherPosition: --config, --socket and --state-dir
// mean the same before and after the command (`tokfence --config F
// daemon` once started on the defaults), and given twice apart they are
// an error, not a guess (issue 14, item 14).
func TestGlobalFlagsWorkInEitherPosition(t *testing.T) {
	e := newCLIEnv(t, keystoretest.Start(t))
	dir := e.home
	cfg := filepath.Join(dir, "alt.toml")
	altSock := filepath.Join(dir, "alt", "tf.sock")
	altState := filepath.Join(dir, "altstate")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf("socket = %q\naudit_fsync = false\n", altSock)), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"--config", cfg, "status"}, {"status", "--config", cfg}} {
		if r := e.run("", args...); r.code != 1 || !strings.Contains(r.stderr, altSock) {
			t.Errorf("%v = %+v, want the config's socket %s named", args, r, altSock)
		}
	}
	if r := e.run("", "--socket", "/nonexistent/a.sock", "status", "--socket", "/nonexistent/b.sock"); r.code != 1 || !strings.Contains(r.stderr, "--socket given twice") {
		t.Errorf("--socket twice = %+v, want an error", r)
	}
	// The daemon, with its config given before the command and its state
	// dir after it, runs where both say.
	cmd := exec.Command(binPath, "--config", cfg, "daemon", "--state-dir", altState)
	cmd.Env = e.env
	var logs strings.Builder
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() }()
	waitFor(t, "the daemon on the config's socket", func() bool {
		return e.run("", "status", "--config", cfg).code == 0
	})
	if _, err := os.Stat(filepath.Join(altState, "install-id")); err != nil {
		t.Fatalf("state dir from --state-dir after the command: %v\n%s", err, logs.String())
	}
}

// TestAuditHashFindsASecretOnTheTrail: a held key sent in a body is a
// sensor hit recorded by fingerprint only; `audit hash` of the key gives
// that fingerprint and `audit --fingerprint` finds the record. The value
// is refused on the command line (issue 14, item 15).
func TestAuditHashFindsASecretOnTheTrail(t *testing.T) {
	e, _, _ := agentEnv(t)
	e.startDaemon()
	g := e.run("", "grant", "--agent", "leaky", "--provider", "openai")
	if g.code != 0 {
		t.Fatalf("grant = %+v", g)
	}
	body := `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"` + testAnthropicKey + `"}]}`
	out, err := exec.Command("curl", "-s", "--unix-socket", e.socket, "-H", "Authorization: Bearer "+strings.TrimSpace(g.stdout),
		"-H", "Content-Type: application/json", "-d", body, "http://tokfence/openai/v1/chat/completions").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "blocked") {
		t.Fatalf("request carrying a held key = %s, %v; want it blocked", out, err)
	}
	h := e.run(testAnthropicKey+"\n", "audit", "hash")
	fp := strings.TrimSpace(h.stdout)
	if h.code != 0 || len(fp) != 16 {
		t.Fatalf("audit hash = %+v, want 16 hex digits", h)
	}
	r := e.run("", "audit", "--fingerprint", fp, "--json")
	if r.code != 0 || !strings.Contains(r.stdout, `"event":"sensor_hit"`) || strings.Count(strings.TrimSpace(r.stdout), "\n") != 0 {
		t.Fatalf("audit --fingerprint %s = %+v, want the one sensor hit", fp, r)
	}
	if strings.Contains(r.stdout, testAnthropicKey) {
		t.Fatal("the trail holds the key itself")
	}
	if other := e.run("some-other-secret-value", "audit", "hash"); strings.TrimSpace(other.stdout) == fp || other.code != 0 {
		t.Fatalf("another value hashed to %+v", other)
	}
	if a := e.run("", "audit", "hash", testAnthropicKey); a.code != 1 || !strings.Contains(a.stderr, "stdin, not the command line") {
		t.Fatalf("audit hash VALUE = %+v, want a refusal pointing at stdin", a)
	}
}
