package daemon

import (
	"net/http"
	"testing"

	"github.com/tokfence/tokfence/daemon/api"
)

// TestWebSocketOnTheAgentSocket: a fenced session's agent socket serves
// its own session's WebSocket and refuses another session's token with a
// 403 before the upstream is dialled.
func TestWebSocketOnTheAgentSocket(t *testing.T) {
	e := startProxyEnv(t, wsUpstream(serveResponses(make(chan string, 10))))
	fake := startFakeFence(t)
	g := e.grant(t, fencedGrant(fake.Process.Pid))
	other := e.grant(t, api.GrantRequest{Agent: "other"})
	const host = "127.0.0.1:9471" // the fence's forwarder, as the agent sees it
	if agent, resp := dialWSAt(t, "unix", g.AgentSocket, host, "/openai/v1/responses", bearer(other.Token)); agent != nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("another session's token on the agent socket = %d, want 403", resp.StatusCode)
	}
	if e.up.count() != 0 {
		t.Fatalf("the upstream was dialled for a foreign token")
	}
	agent, resp := dialWSAt(t, "unix", g.AgentSocket, host, "/openai/v1/responses", bearer(g.Token))
	if agent == nil {
		t.Fatalf("its own token on the agent socket = %d, want 101", resp.StatusCode)
	}
	agent.send(byte(opText), responseCreate)
	if text := readResponse(t, agent); text != "Hello" {
		t.Fatalf("response over the agent socket = %q", text)
	}
}
