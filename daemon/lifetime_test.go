package daemon

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tokfence/tokfence/daemon/api"
	"github.com/tokfence/tokfence/daemon/audit"
	"github.com/tokfence/tokfence/daemon/layout"
)

// TestBoundSessionLivesAsLongAsItsProcess: a session bound to its
// process (exec's) is good hours past grant's 15-minute default, by the
// daemon's clock, until max_ttl; an unbound one dies at 15 minutes.
func TestBoundSessionLivesAsLongAsItsProcess(t *testing.T) {
	e := startProxyEnv(t, nil, func(c *Config) { c.MaxTTL = Duration{6 * time.Hour} })
	bound := e.grant(t, api.GrantRequest{Agent: "exec", BindPeer: true}) // this test process is the peer: it stays alive
	short := e.grant(t, api.GrantRequest{Agent: "grant"})
	if want := e.clock.Now().Add(6 * time.Hour); bound.Expires.Before(want.Add(-2*time.Second)) || bound.Expires.After(want) {
		t.Fatalf("bound session expires %v, want max_ttl from now (%v)", bound.Expires, want)
	}
	for _, after := range []time.Duration{16 * time.Minute, 2 * time.Hour, 5*time.Hour + 50*time.Minute} {
		e.clock.Advance(after - e.clock.Now().Sub(bound.Expires.Add(-6*time.Hour)))
		if resp, body := e.do(t, false, "POST", "/openai/v1/chat/completions", chatBody, bearer(bound.Token)); resp.StatusCode != 200 {
			t.Fatalf("bound session %v in: %d %s", after, resp.StatusCode, body)
		}
		if resp, body := e.do(t, false, "POST", "/openai/v1/chat/completions", chatBody, bearer(short.Token)); resp.StatusCode != 401 || !strings.Contains(body, "expired") {
			t.Fatalf("unbound 15m token %v in: %d %s, want 401 expired", after, resp.StatusCode, body)
		}
	}
	e.clock.Advance(20 * time.Minute) // past max_ttl
	if resp, _ := e.do(t, false, "POST", "/openai/v1/chat/completions", chatBody, bearer(bound.Token)); resp.StatusCode != 401 {
		t.Fatalf("bound session past max_ttl: %d, want 401", resp.StatusCode)
	}
	// --ttl still shortens a bound session.
	ttl := e.grant(t, api.GrantRequest{Agent: "exec-ttl", BindPeer: true, TTL: "20m"})
	if d := ttl.Expires.Sub(e.clock.Now()); d > 20*time.Minute || d < 19*time.Minute {
		t.Fatalf("bound session with ttl 20m expires in %v", d)
	}
}

// TestRenewKeepsTheSessionUpToMaxTTL renews a grant token as its user
// would through a long run: the session (its id, risk state, request
// count) carries on with each new token, the renewal is audited, no token
// reaches past the first issue plus max_ttl.
func TestRenewKeepsTheSessionUpToMaxTTL(t *testing.T) {
	e := startProxyEnv(t, nil, func(c *Config) { c.MaxTTL = Duration{time.Hour} })
	g := e.grant(t, api.GrantRequest{TTL: "30m"})
	start := e.clock.Now()
	ctx := context.Background()
	last := g.Token
	for i, step := range []time.Duration{25 * time.Minute, 25 * time.Minute, 10 * time.Minute} {
		e.clock.Advance(step)
		r, err := e.client.Renew(ctx, api.RenewRequest{Session: g.Session, TTL: "30m"})
		if i == 2 {
			// An hour in: the session's max_ttl is reached.
			if !isStatus(err, http.StatusConflict) || !strings.Contains(err.Error(), "max_ttl") {
				t.Fatalf("renew past max_ttl = %+v, %v; want 409 naming max_ttl", r, err)
			}
			break
		}
		if err != nil {
			t.Fatalf("renew %d: %v", i, err)
		}
		if r.Session != g.Session || r.Token == last || r.Env["OPENAI_API_KEY"] != r.Token {
			t.Fatalf("renew %d = %+v, want the same session with a new token in its env", i, r)
		}
		if r.Expires.After(start.Add(time.Hour)) {
			t.Fatalf("renew %d expires %v, past the session's start + max_ttl %v", i, r.Expires, start.Add(time.Hour))
		}
		if resp, body := e.do(t, false, "POST", "/openai/v1/chat/completions", chatBody, bearer(r.Token)); resp.StatusCode != 200 {
			t.Fatalf("renewed token %d: %d %s", i, resp.StatusCode, body)
		}
		last = r.Token
		list, err := e.client.Sessions(ctx)
		if err != nil || len(list) != 1 || list[0].ID != g.Session || list[0].Requests != int64(i+1) || !list[0].Expires.Equal(r.Expires) {
			t.Fatalf("sessions after renewal %d = %+v, %v; want the one session, expiring with its new token", i, list, err)
		}
	}
	if n := countEvents(t, e, audit.EventRenew); n != 2 {
		t.Fatalf("%d renew records, want 2", n)
	}
	for _, bad := range []api.RenewRequest{{Session: "nope"}, {Session: g.Session, TTL: "-1m"}, {Session: strings.Repeat("a", 32)}} {
		if _, err := e.client.Renew(ctx, bad); err == nil {
			t.Fatalf("renew %+v succeeded", bad)
		}
	}
}

// TestKillEndsEveryTokenOfARenewedSession: the old token and the renewed
// one are both live until the kill, and neither after it; a killed
// session cannot be renewed back to life.
func TestKillEndsEveryTokenOfARenewedSession(t *testing.T) {
	e := startProxyEnv(t, nil)
	ctx := context.Background()
	g := e.grant(t, api.GrantRequest{TTL: "30m"})
	r, err := e.client.Renew(ctx, api.RenewRequest{Session: g.Session, TTL: "1h"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range []string{g.Token, r.Token} {
		if resp, body := e.do(t, false, "POST", "/openai/v1/chat/completions", chatBody, bearer(tok)); resp.StatusCode != 200 {
			t.Fatalf("before kill: %d %s", resp.StatusCode, body)
		}
	}
	if _, err := e.client.Kill(ctx, api.KillRequest{Session: g.Session}); err != nil {
		t.Fatal(err)
	}
	for i, tok := range []string{g.Token, r.Token} {
		if resp, body := e.do(t, false, "POST", "/openai/v1/chat/completions", chatBody, bearer(tok)); resp.StatusCode != 401 || !strings.Contains(body, "revoked") {
			t.Fatalf("token %d after kill: %d %s, want 401 revoked", i, resp.StatusCode, body)
		}
	}
	if _, err := e.client.Renew(ctx, api.RenewRequest{Session: g.Session}); !isStatus(err, http.StatusNotFound) {
		t.Fatalf("renew of a killed session = %v, want 404", err)
	}
}

// countEvents counts the audit records of event ev so far.
func countEvents(t *testing.T, e *proxyEnv, ev string) int {
	t.Helper()
	n := 0
	if err := audit.Read(layout.StateDir(e.cfg.StateDir).Audit(), audit.Filter{Event: ev}, func(audit.Record) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestKillAfterRestartCoversTheRenewedToken: after a restart the session
// comes back from whichever of its tokens is used first. Killed then, the
// revocation must outlast the renewed token too, not just the old one.
func TestKillAfterRestartCoversTheRenewedToken(t *testing.T) {
	e := startProxyEnv(t, nil)
	g := e.grant(t, api.GrantRequest{TTL: "10m"})
	r, err := e.client.Renew(context.Background(), api.RenewRequest{Session: g.Session, TTL: "2h"})
	if err != nil {
		t.Fatal(err)
	}
	e2 := e.restart(t)
	if resp, body := e2.do(t, false, "POST", "/openai/v1/chat/completions", chatBody, bearer(g.Token)); resp.StatusCode != 200 {
		t.Fatalf("old token after restart: %d %s", resp.StatusCode, body)
	}
	if _, err := e2.client.Kill(context.Background(), api.KillRequest{Session: g.Session}); err != nil {
		t.Fatal(err)
	}
	e2.clock.Advance(time.Hour) // the old token's expiry and its revocation's margin are long past
	e3 := e2.restart(t)
	if resp, body := e3.do(t, false, "POST", "/openai/v1/chat/completions", chatBody, bearer(r.Token)); resp.StatusCode != 401 {
		t.Fatalf("renewed token an hour after the kill: %d %s, want 401", resp.StatusCode, body)
	}
}
