package daemon

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tokfence/tokfence/daemon/api"
	"github.com/tokfence/tokfence/daemon/audit"
)

// startFakeFence starts a child that stands in for a fence's init: the
// daemon binds a fenced session to it and kills it with the session.
func startFakeFence(t *testing.T) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd
}

func agentClient(socket string) *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", socket)
		}}}
}

func agentDo(t *testing.T, hc *http.Client, method, path, token string, hdr map[string]string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, "http://127.0.0.1:9471"+path, strings.NewReader(`{"model":"gpt-4o-mini","messages":[]}`))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s over the agent socket: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func fencedGrant(pid int) api.GrantRequest {
	return api.GrantRequest{Agent: "fenced", Providers: []string{"openai"}, BindPeer: true,
		Fence: api.FenceFenced, FencePID: pid, FencePort: 9471, Exposed: []string{"/home/u/.aws"}}
}

func TestAgentSocketServesOnlyItsSessionsProxy(t *testing.T) {
	e := startProxyEnv(t, nil)
	fake := startFakeFence(t)
	g := e.grant(t, fencedGrant(fake.Process.Pid))
	if g.AgentSocket == "" || g.Env["OPENAI_BASE_URL"] != "http://127.0.0.1:9471/openai/v1" {
		t.Fatalf("fenced grant = socket %q, env %v; want an agent socket and the forwarder's base URL", g.AgentSocket, g.Env)
	}
	if fi, err := os.Stat(g.AgentSocket); err != nil || fi.Mode()&os.ModeSocket == 0 {
		t.Fatalf("agent socket %s: %v", g.AgentSocket, err)
	}
	other := e.grant(t, api.GrantRequest{Agent: "other"})
	hc := agentClient(g.AgentSocket)
	tests := []struct {
		name, method, path, token string
		hdr                       map[string]string
		want                      int
	}{
		{"its own token is served", "POST", "/openai/v1/chat/completions", g.Token, nil, 200},
		{"another session's token is refused", "POST", "/openai/v1/chat/completions", other.Token, nil, 403},
		{"no token is refused", "POST", "/openai/v1/chat/completions", "", nil, 401},
		{"a browser is refused", "POST", "/openai/v1/chat/completions", g.Token, map[string]string{"Origin": "http://evil.example"}, 403},
		{"status is no route here", "GET", "/v1/status", "", nil, 404},
		{"grant is no route here", "POST", "/v1/grant", "", nil, 404},
		{"kill is no route here", "POST", "/v1/kill", "", nil, 404},
		{"sessions is no route here", "GET", "/v1/sessions", "", nil, 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if code, body := agentDo(t, hc, tt.method, tt.path, tt.token, tt.hdr); code != tt.want {
				t.Fatalf("%s %s = %d %s, want %d", tt.method, tt.path, code, body, tt.want)
			}
		})
	}
	if n := e.up.count(); n != 1 {
		t.Fatalf("upstream saw %d requests, want only the session's own", n)
	}
	list, err := e.client.Sessions(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range list {
		if want := map[string]string{g.Session: api.FenceFenced, other.Session: ""}[s.ID]; s.Fence != want {
			t.Errorf("session %s fence = %q, want %q", s.Agent, s.Fence, want)
		}
	}
}

func TestKillEndsTheFenceAndClosesItsSocket(t *testing.T) {
	e := startProxyEnv(t, nil)
	fake := startFakeFence(t)
	g := e.grant(t, fencedGrant(fake.Process.Pid))
	if _, err := e.client.Kill(context.Background(), api.KillRequest{Session: g.Session}); err != nil {
		t.Fatal(err)
	}
	err := fake.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("fence after kill = %v, want killed by SIGKILL", err)
	}
	waitUntil(t, "the agent socket to go", func() bool { _, err := os.Stat(g.AgentSocket); return err != nil })
}

func TestFenceExitEndsTheSession(t *testing.T) {
	e := startProxyEnv(t, nil)
	fake := startFakeFence(t)
	g := e.grant(t, fencedGrant(fake.Process.Pid))
	fake.Process.Kill()
	waitUntil(t, "the session to end with its fence", func() bool {
		list, _ := e.client.Sessions(context.Background())
		for _, s := range list {
			if s.ID == g.Session {
				return false
			}
		}
		return true
	})
}

func TestFencedGrantRefusals(t *testing.T) {
	e := startProxyEnv(t, nil)
	fake := startFakeFence(t)
	tests := []struct {
		name string
		edit func(*api.GrantRequest)
	}{
		{"a fence that is not the caller's child", func(r *api.GrantRequest) { r.FencePID = os.Getppid() }},
		{"a fence pid that does not exist", func(r *api.GrantRequest) { r.FencePID = 1 << 22 }},
		{"no fence pid", func(r *api.GrantRequest) { r.FencePID = 0 }},
		{"a fenced grant not bound to its caller", func(r *api.GrantRequest) { r.BindPeer = false }},
		{"a port out of range", func(r *api.GrantRequest) { r.FencePort = 70000 }},
		{"an unknown fence mode", func(r *api.GrantRequest) { r.Fence = "half" }},
		{"a fence pid on an unfenced grant", func(r *api.GrantRequest) { r.Fence = api.FenceUnfenced }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := fencedGrant(fake.Process.Pid)
			tt.edit(&req)
			_, err := e.client.Grant(context.Background(), req)
			var ae *api.Error
			if !errors.As(err, &ae) || ae.Status != 400 {
				t.Fatalf("Grant(%+v) = %v, want 400", req, err)
			}
		})
	}
	if list, _ := e.client.Sessions(context.Background()); len(list) != 0 {
		t.Fatalf("refused grants left sessions behind: %+v", list)
	}
}

// TestRepeatedAuthFailuresCountAgainstTheSession (issue 14, item 13): a
// fenced agent that sends forged, foreign or no tokens on its socket is
// the one making the failures; the policy's auth_failure rule (5 → ORANGE
// built in) now fires for its session. Another session is untouched.
func TestRepeatedAuthFailuresCountAgainstTheSession(t *testing.T) {
	e := startProxyEnv(t, nil)
	fake := startFakeFence(t)
	g := e.grant(t, fencedGrant(fake.Process.Pid))
	other := e.grant(t, api.GrantRequest{Agent: "other"})
	hc := agentClient(g.AgentSocket)
	for i, tok := range []string{"", "garbage", g.Token[:len(g.Token)-3] + "AAA", other.Token} {
		agentDo(t, hc, "POST", "/openai/v1/chat/completions", tok, nil)
		if s := sessionRisk(t, e, g.Session); s.Risk != "GREEN" {
			t.Fatalf("after %d auth failures the session is %s, want GREEN until 5", i+1, s.Risk)
		}
	}
	agentDo(t, hc, "POST", "/openai/v1/chat/completions", "garbage", nil)
	if s := sessionRisk(t, e, g.Session); s.Risk != "ORANGE" {
		t.Fatalf("after 5 auth failures on its socket the session is %s, want ORANGE", s.Risk)
	}
	if s := sessionRisk(t, e, other.Session); s.Risk != "GREEN" {
		t.Fatalf("the session whose token was replayed is %s, want GREEN: the failures were not its", s.Risk)
	}
	if n := countEvents(t, e, audit.EventRiskChange); n != 1 {
		t.Fatalf("%d risk changes on the trail, want the one to ORANGE", n)
	}
}
