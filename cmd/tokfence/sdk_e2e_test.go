package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokfence/tokfence/daemon/audit"
)

// These tests run real clients from npm (testdata/sdk/package.json, exact
// versions, installed with `npm ci` from its lockfile) inside a fence,
// configured by nothing but the env `tokfence exec` sets.

var (
	sdkOnce sync.Once
	sdkErr  error
)

// sdkModules returns testdata/sdk with its node_modules installed from the
// lockfile, running `npm ci` when they are missing or were installed from
// another lockfile (a stamp in node_modules holds the lockfile's hash).
// Without npm the test is skipped, or fails under TOKFENCE_REQUIRE_SDK=1.
func sdkModules(t *testing.T) string {
	t.Helper()
	dir, _ := filepath.Abs("../../testdata/sdk")
	if _, err := exec.LookPath("npm"); err != nil {
		if os.Getenv("TOKFENCE_REQUIRE_SDK") == "1" {
			t.Fatal("npm is required (TOKFENCE_REQUIRE_SDK=1)")
		}
		t.Skip("npm not installed")
	}
	sdkOnce.Do(func() { sdkErr = npmCI(dir) })
	if sdkErr != nil {
		t.Fatal(sdkErr)
	}
	return dir
}

func npmCI(dir string) error {
	lock, err := os.ReadFile(filepath.Join(dir, "package-lock.json"))
	if err != nil {
		return err
	}
	sum := sha256.Sum256(lock)
	want := hex.EncodeToString(sum[:])
	stamp := filepath.Join(dir, "node_modules", ".tokfence-lock-sha256")
	if got, _ := os.ReadFile(stamp); string(got) == want {
		return nil
	}
	cmd := exec.Command("npm", "ci", "--no-audit", "--no-fund", "--silent")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("npm ci in %s: %v\n%s", dir, err, out)
	}
	return os.WriteFile(stamp, []byte(want), 0o644)
}

// sdkCall is one call errors.mjs made and what became of it.
type sdkCall struct {
	Agent        string // the exec's agent (the daemon's name for the session)
	SDK, Kind    string
	OK           bool
	Class        string // the SDK's error class
	Status       int
	SDKMessage   string // err.message
	Message      string // the message the SDK parsed out of the body
	Type, Code   string
	ShouldRetry  string // x-should-retry, as openai and anthropic read it
	RetryAfterMs string
	Attempts     int // HTTP requests the SDK sent for this call
	Ms           int // how long the call took, a retry's wait included
}

// refusals are the refusal kinds errors.mjs provokes: the status each
// must have, what its message must say, and whether a retry may help.
var refusals = map[string]struct {
	status int
	says   string
	retry  bool
}{
	"scope":  {403, "outside the grant's scope", false},
	"forged": {401, "capability token refused", false},
	"limit":  {403, "session request limit reached", false},
	"spend":  {403, "has no price", false},
	"rate":   {429, "rate limit", true},
}

// sdkErrorClass is the class each SDK throws for a status, and the error
// type it parses out of the body (Anthropic's error.type, Google's status).
func sdkErrorClass(sdk string, status int) (class, typ string) {
	if sdk == "genai" {
		return "ApiError", map[int]string{401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 429: "RESOURCE_EXHAUSTED"}[status]
	}
	class = map[int]string{401: "AuthenticationError", 403: "PermissionDeniedError", 429: "RateLimitError"}[status]
	typ = map[int]string{401: "authentication_error", 403: "permission_error", 429: "rate_limit_error"}[status]
	return class, typ
}

// TestSDKsShowEachRefusalAndDoNotRetryIt provokes every kind of refusal
// on every provider route through that provider's own SDK: each must come
// out as the SDK's error for the status, with Tokfence's cause as its
// message, after exactly one request; only the rate limit's 429 may be
// retried, and a retry then gets through.
func TestSDKsShowEachRefusalAndDoNotRetryIt(t *testing.T) {
	sdkDir := sdkModules(t)
	e, fp, _ := fenceEnv(t, sdkDir)
	e.storeKey("gemini", testGeminiKey)
	usePolicy(t, e, "version = 1\n[agent.rated.limits.green]\nper_minute = 60\nburst = 1\n")
	e.startDaemon()
	var calls []sdkCall
	for _, run := range []struct {
		agent, mode string
		scope       []string
	}{
		{"scoped", "scope", []string{"--model", "nothing-*"}},
		{"limited", "limit", []string{"--max-requests", "1"}},
		{"spender", "spend", []string{"--max-spend", "1"}},
		{"rated", "rate", nil},
	} {
		args := append([]string{"exec", "--agent", run.agent, "--provider", "openai", "--provider", "anthropic", "--provider", "gemini"}, run.scope...)
		r := e.run("", append(args, "--", "node", filepath.Join(sdkDir, "errors.mjs"), run.mode)...)
		var got []sdkCall
		if r.code != 0 || json.Unmarshal([]byte(strings.TrimSpace(r.stdout)), &got) != nil {
			t.Fatalf("errors.mjs %s = %+v", run.mode, r)
		}
		for i := range got {
			// A forged token's request is the session's too: it came
			// through the session's fence, and the daemon counts it
			// against that session (the policy's auth_failure rule).
			got[i].Agent = run.agent
		}
		calls = append(calls, got...)
	}
	seen := map[string]bool{}
	for _, c := range calls {
		seen[c.SDK+" "+c.Kind] = true
		checkSDKCall(t, c)
	}
	for kind := range refusals {
		for _, sdk := range []string{"openai", "anthropic", "genai"} {
			if !seen[sdk+" "+kind] {
				t.Errorf("%s: no %s refusal was provoked", sdk, kind)
			}
		}
	}
	checkAttemptsAudited(t, e, calls)
	if t.Failed() {
		t.Logf("calls:\n%s", formatCalls(calls))
	}
	checkOnlySuccessesWentUpstream(t, fp, calls)
}

// checkSDKCall checks one call against refusals.
func checkSDKCall(t *testing.T, c sdkCall) {
	t.Helper()
	if c.Kind == "rate-burst" {
		return // the session's burst of one, if the first call had it
	}
	if c.Kind == "limit-first" || c.Kind == "rate-retried" {
		// The session's one request, and the SDK's retry of a 429,
		// which waits out Retry-After and gets through.
		if min := map[string]int{"limit-first": 1, "rate-retried": 2}[c.Kind]; !c.OK || c.Attempts < min || c.Attempts > 3 {
			t.Errorf("%s %s: ok %v after %d attempts (%s), want ok after %d..3", c.SDK, c.Kind, c.OK, c.Attempts, c.SDKMessage, min)
		}
		return
	}
	want := refusals[c.Kind]
	class, typ := sdkErrorClass(c.SDK, want.status)
	switch {
	case c.OK || c.Status != want.status || c.Class != class || c.Type != typ:
		t.Errorf("%s %s: ok %v, %s %d %q, want %s %d %q", c.SDK, c.Kind, c.OK, c.Class, c.Status, c.Type, class, want.status, typ)
	case !strings.Contains(c.Message, want.says) || strings.HasPrefix(c.Message, "{"):
		t.Errorf("%s %s: the SDK shows %q (err.message %q), want Tokfence's cause %q", c.SDK, c.Kind, c.Message, c.SDKMessage, want.says)
	case c.Attempts != 1:
		t.Errorf("%s %s: %d attempts, want 1: the SDK retried a refusal", c.SDK, c.Kind, c.Attempts)
	case c.SDK != "genai" && c.ShouldRetry != fmt.Sprint(want.retry):
		t.Errorf("%s %s: x-should-retry %q, want %v", c.SDK, c.Kind, c.ShouldRetry, want.retry)
	case c.SDK != "genai" && want.retry && c.RetryAfterMs == "":
		t.Errorf("%s %s: no retry-after-ms on a 429", c.SDK, c.Kind)
	}
}

// checkAttemptsAudited compares the attempts the SDKs counted with the
// requests the daemon recorded, per agent: the two must agree, or the
// fetch wrapper missed a retry.
func checkAttemptsAudited(t *testing.T, e *cliEnv, calls []sdkCall) {
	t.Helper()
	want := map[string]int{}
	for _, c := range calls {
		want[c.Agent] += c.Attempts
	}
	if got := waitAudited(t, e, want); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("requests the daemon recorded per agent = %v, the SDKs counted %v", got, want)
	}
}

// waitAudited returns auditedResponses once it is want, or after a few
// seconds: the last responses' records are written asynchronously.
func waitAudited(t *testing.T, e *cliEnv, want map[string]int) map[string]int {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := auditedResponses(t, e)
		if fmt.Sprint(got) == fmt.Sprint(want) || time.Now().After(deadline) {
			return got
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// auditedResponses counts the response records on the audit trail per
// agent ("" for requests no session was found for).
func auditedResponses(t *testing.T, e *cliEnv) map[string]int {
	t.Helper()
	r := e.run("", "audit", "--event", audit.EventResponse, "--json")
	if r.code != 0 {
		t.Fatalf("audit = %+v", r)
	}
	n := map[string]int{}
	sc := bufio.NewScanner(strings.NewReader(r.stdout))
	for sc.Scan() {
		var rec audit.Record
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("audit line %q: %v", sc.Text(), err)
		}
		n[rec.Agent]++
	}
	return n
}

// checkOnlySuccessesWentUpstream: the upstream saw one request per call
// that succeeded, and only ever the real keys.
func checkOnlySuccessesWentUpstream(t *testing.T, fp *fakeProvider, calls []sdkCall) {
	t.Helper()
	ok := 0
	for _, c := range calls {
		if c.OK {
			ok++
		}
	}
	auths, paths := fp.seen()
	if len(paths) != ok {
		t.Errorf("upstream saw %d requests %v, want the %d that succeeded: a refusal was forwarded", len(paths), paths, ok)
	}
	for _, a := range auths {
		if a != "Bearer "+testOpenAIKey && a != testAnthropicKey && a != testGeminiKey {
			t.Errorf("upstream saw credential %q, want only the real keys", a)
		}
	}
}

func formatCalls(calls []sdkCall) string {
	var b bytes.Buffer
	for _, c := range calls {
		fmt.Fprintf(&b, "  %-9s %-12s %-8s ok=%-5v %-22s %d %-20q attempts=%d in %d ms retry=%q message=%q\n",
			c.SDK, c.Kind, c.Agent, c.OK, c.Class, c.Status, c.Type, c.Attempts, c.Ms, c.ShouldRetry, c.Message)
	}
	return b.String()
}

// usePolicy writes policy as the daemon's policy file.
func usePolicy(t *testing.T, e *cliEnv, policy string) {
	t.Helper()
	pf := filepath.Join(e.home, "policy.toml")
	cfgFile := filepath.Join(e.home, ".config", "tokfence", "config.toml")
	cfg, err := os.ReadFile(cfgFile)
	if err != nil {
		t.Fatal(err)
	}
	// A top-level key goes before the first table.
	cfg = append([]byte(fmt.Sprintf("policy_file = %q\n", pf)), cfg...)
	if err := os.WriteFile(pf, []byte(policy), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfgFile, cfg, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestVercelAISDKAndOfficialSDKShareTheAnthropicBaseURL runs the Vercel AI
// SDK (generateText with @ai-sdk/anthropic, and @ai-sdk/openai's chat and
// Responses models) and the official Anthropic SDK in one fenced process.
// The AI SDK appends /messages to ANTHROPIC_BASE_URL, expecting it to end
// in /v1, the official SDK /v1/messages; exec's one value (no /v1) must
// serve both, and both must reach the upstream's /v1/messages.
func TestVercelAISDKAndOfficialSDKShareTheAnthropicBaseURL(t *testing.T) {
	sdkDir := sdkModules(t)
	e, fp, _ := fenceEnv(t, sdkDir)
	e.startDaemon()
	r := e.run("", "exec", "--agent", "aisdk", "--provider", "anthropic", "--provider", "openai", "--", "node", filepath.Join(sdkDir, "aisdk.mjs"))
	var got struct{ Anthropic, OpenAIChat, OpenAIResponses, Official string }
	if r.code != 0 || json.Unmarshal([]byte(strings.TrimSpace(r.stdout)), &got) != nil {
		t.Fatalf("aisdk.mjs = %+v\nupstream saw %q", r, fp.requests())
	}
	if got.Anthropic != "hello from anthropic" || got.Official != "hello from anthropic" ||
		got.OpenAIChat != "hello from openai" || got.OpenAIResponses != "hello from responses" {
		t.Fatalf("AI SDK results = %+v", got)
	}
	reqs := fp.requests() // the AI SDK's User-Agent is "ai/V ai-sdk-provider-utils/V node.js/V"
	for _, w := range []struct{ path, client string }{
		{"POST /v1/messages", "ai-sdk-provider-utils/"}, {"POST /v1/messages", "Anthropic/JS"},
		{"POST /v1/chat/completions", "ai-sdk-provider-utils/"}, {"POST /v1/responses", "ai-sdk-provider-utils/"},
	} {
		if !slices.ContainsFunc(reqs, func(r string) bool {
			return strings.HasPrefix(r, w.path+"  ") && strings.Contains(r, w.client)
		}) {
			t.Errorf("upstream got no %s from %s: it saw %q", w.path, w.client, reqs)
		}
	}
}

// claudeResult is the part of `claude -p --output-format json` checked.
type claudeResult struct {
	Subtype, Result string
	IsError         bool `json:"is_error"`
	APIErrorStatus  int  `json:"api_error_status"`
}

// TestClaudeCodePrintModeUnderExec runs Claude Code (`claude -p`, the
// native binary from npm) fenced and offline against the fake upstream,
// from a parent shell holding stale Anthropic credentials of its own. It
// must answer with the fake's streamed text, the upstream must see only the
// real key, and nothing may ask about a custom API key or two credentials.
// Then, under --max-spend with a model that has no price, it must stop at
// the first refusal and say why (it once retried such a 429 for two
// minutes, printing nothing).
func TestClaudeCodePrintModeUnderExec(t *testing.T) {
	sdkDir := sdkModules(t)
	e, fp, _ := fenceEnv(t, sdkDir)
	e.env = append(e.env,
		// Offline: no telemetry, error reports, update checks or other
		// traffic besides the API (plain names: the fence passes them).
		"CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1", "DISABLE_AUTOUPDATER=1",
		// What a user's shell may hold: exec must keep both from Claude Code.
		"ANTHROPIC_AUTH_TOKEN=sk-ant-oat01-PARENT-stale-token", "ANTHROPIC_API_KEY=sk-ant-api03-PARENT-key")
	e.startDaemon()
	r, got := runClaude(t, e, sdkDir, "claude", nil)
	reqs := fp.requests()
	if r.code != 0 || got.Result != fakeStreamText || got.IsError || got.Subtype != "success" {
		t.Fatalf("claude -p = %+v, result %+v, want %q\nupstream saw %q", r, got, fakeStreamText, reqs)
	}
	for _, bad := range []string{"custom API key", "two different credentials", "PARENT"} {
		if strings.Contains(r.stdout+r.stderr, bad) {
			t.Errorf("claude -p output mentions %q:\n%s\n%s", bad, r.stdout, r.stderr)
		}
	}
	auths, paths := fp.seen()
	for _, a := range auths {
		if a != testAnthropicKey {
			t.Errorf("upstream saw credential %q, want only the real key (never the token)", a)
		}
	}
	for _, p := range paths {
		if p != "POST /v1/messages" {
			t.Errorf("upstream got %s; all it saw: %q", p, reqs)
		}
	}
	if len(paths) == 0 {
		t.Error("upstream saw no request")
	}

	r, got = runClaude(t, e, sdkDir, "claude-spend", []string{"--max-spend", "1"}, "--model", "claude-99-nowhere")
	if r.code != 1 || !got.IsError || got.APIErrorStatus != 403 || !strings.Contains(got.Result, `"claude-99-nowhere" has no price`) {
		t.Errorf("claude -p under --max-spend with an unpriced model = %+v, result %+v; want exit 1 with the 403 and its cause", r, got)
	}
	want := map[string]int{"claude": len(paths), "claude-spend": 1}
	if got := waitAudited(t, e, want); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("requests the daemon recorded per agent = %v, want %v (one refused, not retried)", got, want)
	}
}

// runClaude runs `claude -p "say hello" --output-format json [args]` under
// exec as agent, from the home (so that Claude Code reads no project, such
// as this repository, into its prompt).
func runClaude(t *testing.T, e *cliEnv, sdkDir, agent string, scope []string, args ...string) (result, claudeResult) {
	t.Helper()
	claude := filepath.Join(sdkDir, "node_modules", ".bin", "claude")
	argv := append([]string{"exec", "--agent", agent, "--provider", "anthropic"}, scope...)
	argv = append(argv, "--", "sh", "-c", `cd "$HOME" && exec "$0" "$@"`, claude, "-p", "say hello", "--output-format", "json")
	r := e.run("", append(argv, args...)...)
	var got claudeResult
	if err := json.Unmarshal([]byte(strings.TrimSpace(r.stdout)), &got); err != nil {
		t.Fatalf("claude -p output: %v\n%+v", err, r)
	}
	return r, got
}
