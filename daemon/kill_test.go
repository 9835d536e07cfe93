package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/tokfence/tokfence/daemon/api"
	"github.com/tokfence/tokfence/daemon/layout"
)

// slowStream is an upstream that sends an SSE event every 20 ms until the
// request is cancelled.
func slowStream(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/event-stream")
	for i := 0; ; i++ {
		if _, err := fmt.Fprintf(w, "data: {\"choices\":[{\"delta\":{\"content\":\"t%d\"}}]}\n\n", i); err != nil {
			return
		}
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
			return
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func TestKillCutsALiveStream(t *testing.T) {
	e := startProxyEnv(t, slowStream)
	g := e.grant(t, api.GrantRequest{})
	cut := cutAfterFirstEvent(t, e.openStream(t, g.Token))
	killed := time.Now()
	if _, err := e.client.Kill(context.Background(), api.KillRequest{Session: g.Session}); err != nil {
		t.Fatal(err)
	}
	select {
	case at := <-cut:
		t.Logf("kill to cut: %v", at.Sub(killed))
	case <-time.After(10 * time.Second):
		t.Fatal("the stream was not cut by kill")
	}
	if resp, _ := e.do(t, false, "POST", "/openai/v1/chat/completions", chatBody, bearer(g.Token)); resp.StatusCode != 401 {
		t.Fatalf("replay after kill = %d, want 401", resp.StatusCode)
	}
}

// respell returns tok with its last base64url character swapped for
// another that decodes to the same bytes when the spare bits are ignored.
func respell(tok string) []string {
	const alpha = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	last := strings.IndexByte(alpha, tok[len(tok)-1])
	var out []string
	for i := 0; i < 64; i++ {
		if i != last && i>>4 == last>>4 { // a 64-byte signature ends in a char with 2 data bits and 4 spare ones
			out = append(out, tok[:len(tok)-1]+string(alpha[i]))
		}
	}
	return out
}

func TestKilledTokenStaysDeadAcrossRestartAndRespelling(t *testing.T) {
	e := startProxyEnv(t, nil)
	killed := e.grant(t, api.GrantRequest{Agent: "victim"})
	alive := e.grant(t, api.GrantRequest{Agent: "bystander"})
	if _, err := e.client.Kill(context.Background(), api.KillRequest{Session: killed.Session}); err != nil {
		t.Fatal(err)
	}
	check := func(e *proxyEnv, when string) {
		t.Helper()
		for _, tok := range append([]string{killed.Token}, respell(killed.Token)...) {
			if resp, body := e.do(t, false, "POST", "/openai/v1/chat/completions", chatBody, bearer(tok)); resp.StatusCode != 401 {
				t.Fatalf("%s: killed token (or a respelling) = %d %s, want 401", when, resp.StatusCode, body)
			}
		}
		if resp, body := e.do(t, false, "POST", "/openai/v1/chat/completions", chatBody, bearer(alive.Token)); resp.StatusCode != 200 {
			t.Fatalf("%s: bystander = %d %s, want 200", when, resp.StatusCode, body)
		}
	}
	check(e, "before restart")
	before := e.up.count()
	e2 := e.restart(t)
	check(e2, "after restart")
	if got := e2.up.count() - before; got != 1 {
		t.Fatalf("upstream saw %d requests after restart, want only the bystander's", got)
	}
}

// restart stops the daemon and starts a new one on the same state dir,
// keychain and clock, as a reboot would.
func (e *proxyEnv) restart(t *testing.T) *proxyEnv {
	t.Helper()
	e.stop()
	n := newEnvWith(t, e.cfg, e.mem, e.clock)
	if err := n.start(); err != nil {
		t.Fatalf("restart: %v", err)
	}
	n.cfg.TCP = e.cfg.TCP
	out := *e
	out.testEnv = n
	return &out
}

func TestKillAllKillsEveryEarlierToken(t *testing.T) {
	e := startProxyEnv(t, nil)
	old1 := e.grant(t, api.GrantRequest{Agent: "a"})
	old2 := e.grant(t, api.GrantRequest{Agent: "b"}) // never used before the kill
	e.do(t, false, "POST", "/openai/v1/chat/completions", chatBody, bearer(old1.Token))
	res, err := e.client.Kill(context.Background(), api.KillRequest{All: true})
	if err != nil || res.Epoch == 0 {
		t.Fatalf("kill --all = %+v, %v", res, err)
	}
	e2 := e.restart(t)
	for _, tok := range []string{old1.Token, old2.Token} {
		if resp, _ := e2.do(t, false, "POST", "/openai/v1/chat/completions", chatBody, bearer(tok)); resp.StatusCode != 401 {
			t.Fatalf("old token after kill --all = %d, want 401", resp.StatusCode)
		}
	}
	fresh := e2.grant(t, api.GrantRequest{Agent: "a"})
	if resp, _ := e2.do(t, false, "POST", "/openai/v1/chat/completions", chatBody, bearer(fresh.Token)); resp.StatusCode != 200 {
		t.Fatalf("new token after kill --all = %d, want 200", resp.StatusCode)
	}
}

func TestKillAgentAfterRestartFindsUnseenSessions(t *testing.T) {
	e := startProxyEnv(t, nil)
	a1 := e.grant(t, api.GrantRequest{Agent: "coder"})
	other := e.grant(t, api.GrantRequest{Agent: "writer"})
	e2 := e.restart(t)
	res, err := e2.client.Kill(context.Background(), api.KillRequest{Agent: "coder"})
	if err != nil || len(res.Killed) != 1 || res.Killed[0] != a1.Session {
		t.Fatalf("kill --agent coder = %+v, %v", res, err)
	}
	if resp, _ := e2.do(t, false, "POST", "/openai/v1/chat/completions", chatBody, bearer(a1.Token)); resp.StatusCode != 401 {
		t.Fatalf("coder after kill = %d", resp.StatusCode)
	}
	if resp, _ := e2.do(t, false, "POST", "/openai/v1/chat/completions", chatBody, bearer(other.Token)); resp.StatusCode != 200 {
		t.Fatalf("writer after kill of coder = %d", resp.StatusCode)
	}
	if _, err := e2.client.Kill(context.Background(), api.KillRequest{Session: strings.Repeat("a", 32)}); !isStatus(err, 404) {
		t.Fatalf("kill of an unknown session = %v, want 404", err)
	}
}

func isStatus(err error, code int) bool {
	var ae *api.Error
	return errors.As(err, &ae) && ae.Status == code
}

func TestCorruptRevocationListRefusesToStart(t *testing.T) {
	e := startProxyEnv(t, nil)
	g := e.grant(t, api.GrantRequest{})
	e.client.Kill(context.Background(), api.KillRequest{Session: g.Session})
	e.stop()
	p := layout.StateDir(e.cfg.StateDir).Revocations()
	if err := os.WriteFile(p, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := newEnvWith(t, e.cfg, e.mem, e.clock).start()
	if err == nil || !strings.Contains(err.Error(), "revocation") {
		t.Fatalf("start with a corrupt revocation list = %v, want a refusal", err)
	}
}

func TestMaxRequestsIsEnforced(t *testing.T) {
	e := startProxyEnv(t, nil)
	g := e.grant(t, api.GrantRequest{MaxRequests: 2})
	for i, want := range []int{200, 200, 403, 403} {
		if resp, _ := e.do(t, false, "POST", "/openai/v1/chat/completions", chatBody, bearer(g.Token)); resp.StatusCode != want {
			t.Fatalf("request %d = %d, want %d", i+1, resp.StatusCode, want)
		}
	}
	if e.up.count() != 2 {
		t.Fatalf("upstream saw %d, want 2", e.up.count())
	}
	list, err := e.client.Sessions(context.Background())
	if err != nil || len(list) != 1 || list[0].Requests != 2 || list[0].Risk != "GREEN" {
		t.Fatalf("sessions = %+v, %v", list, err)
	}
	_ = io.Discard
}

func TestHousekeepingForgetsDeadSessionsState(t *testing.T) {
	e := startProxyEnv(t, nil)
	dead := e.grant(t, api.GrantRequest{Agent: "dead"})
	alive := e.grant(t, api.GrantRequest{Agent: "alive"})
	if _, err := e.client.Kill(context.Background(), api.KillRequest{Session: dead.Session}); err != nil {
		t.Fatal(err)
	}
	e.d.housekeep()
	if _, ok := e.d.live.lookup(dead.Session); ok {
		t.Fatal("a killed session's risk state outlived housekeeping")
	}
	if _, ok := e.d.live.lookup(alive.Session); !ok {
		t.Fatal("housekeeping dropped a live session's risk state")
	}
}
