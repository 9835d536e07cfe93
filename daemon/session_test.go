package daemon

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tokfence/tokfence/daemon/api"
	"github.com/tokfence/tokfence/daemon/audit"
	"github.com/tokfence/tokfence/keystore"
)

// TestKillingADeadSessionReportsNothing: after `kill --agent coder` has
// killed coder's only session, a second `kill --agent coder` and a kill by
// id find nothing to kill and write no record; so does each after a
// restart, when the session is known only from disk.
func TestKillingADeadSessionReportsNothing(t *testing.T) {
	e := startProxyEnv(t, nil)
	g := e.grant(t, api.GrantRequest{Agent: "coder"})
	ctx := context.Background()
	res, err := e.client.Kill(ctx, api.KillRequest{Agent: "coder"})
	if err != nil || len(res.Killed) != 1 || res.Killed[0] != g.Session {
		t.Fatalf("first kill --agent = %+v, %v; want %s killed", res, err, g.Session)
	}
	again := func(e *proxyEnv, when string) {
		t.Helper()
		if res, err := e.client.Kill(ctx, api.KillRequest{Agent: "coder"}); err == nil || res != nil && len(res.Killed) != 0 {
			t.Errorf("%s: second kill --agent = %+v, %v; want no session killed and an error", when, res, err)
		}
		_, err := e.client.Kill(ctx, api.KillRequest{Session: g.Session})
		var ae *api.Error
		if !errors.As(err, &ae) || ae.Status != 404 {
			t.Errorf("%s: kill by id of a killed session = %v; want a 404", when, err)
		} else if want := "already killed"; !strings.Contains(ae.Message, want) {
			t.Errorf("%s: kill by id says %q; want it to say %q", when, ae.Message, want)
		}
		if n := len(auditRecords(e, audit.EventKill)); n != 1 {
			t.Errorf("%s: %d kill records, want 1", when, n)
		}
	}
	again(e, "same run")
	e2 := e.restart(t)
	again(e2, "after restart")
	if got := e2.d.sessionsOf("coder"); len(got) != 0 {
		t.Errorf("after restart the killed session is still coder's: %v", got)
	}
}

// TestConcurrentKillsOfOneSessionRecordOne: kills racing for one session
// kill it once.
func TestConcurrentKillsOfOneSessionRecordOne(t *testing.T) {
	e := startProxyEnv(t, nil)
	g := e.grant(t, api.GrantRequest{Agent: "coder"})
	errs := make(chan error, 8)
	for i := range 8 {
		go func() {
			req := api.KillRequest{Session: g.Session}
			if i%2 == 1 {
				req = api.KillRequest{Agent: "coder"}
			}
			_, err := e.client.Kill(context.Background(), req)
			errs <- err
		}()
	}
	ok := 0
	for range 8 {
		if <-errs == nil {
			ok++
		}
	}
	if ok != 1 {
		t.Errorf("%d of 8 racing kills reported a kill, want 1", ok)
	}
	if n := len(auditRecords(e, audit.EventKill)); n != 1 {
		t.Errorf("%d kill records, want 1", n)
	}
}

// TestRefusedRequestsSpendNothing: a request refused after the checks
// that could spend (here: no key in the keychain, found after the scope,
// rate and limit checks) uses up neither the grant's request limit nor
// the session's rate allowance.
func TestRefusedRequestsSpendNothing(t *testing.T) {
	dir := shortTempDir(t)
	pf := filepath.Join(dir, "policy.toml")
	must(t, os.WriteFile(pf, []byte("version = 1\n[limits.green]\nper_minute = 1\nburst = 1\n"), 0o600))
	e := startProxyEnv(t, nil, func(c *Config) { c.PolicyFile = pf })
	ctx := context.Background()
	if err := e.keys.DeleteProviderKey(ctx, "openai"); err != nil {
		t.Fatal(err)
	}
	g := e.grant(t, api.GrantRequest{MaxRequests: 1})
	for range 3 {
		if resp, body := e.do(t, false, "POST", "/openai/v1/chat/completions", chatBody, bearer(g.Token)); resp.StatusCode != 503 {
			t.Fatalf("with no key = %d %s, want 503", resp.StatusCode, body)
		}
	}
	if s, _ := e.d.sessions.Get(g.Session); s.Requests() != 0 {
		t.Fatalf("refused requests counted: %d", s.Requests())
	}
	if err := e.keys.SetProviderKey(ctx, "openai", keystore.NewSecret([]byte(fakeOpenAIKey))); err != nil {
		t.Fatal(err)
	}
	if resp, body := e.do(t, false, "POST", "/openai/v1/chat/completions", chatBody, bearer(g.Token)); resp.StatusCode != 200 {
		t.Fatalf("first request to get through = %d %s, want 200 (the refused ones spent the grant)", resp.StatusCode, body)
	}
	if resp, _ := e.do(t, false, "POST", "/openai/v1/chat/completions", chatBody, bearer(g.Token)); resp.StatusCode != 403 && resp.StatusCode != 429 {
		t.Fatalf("second request = %d, want a refusal: the limits must still hold", resp.StatusCode)
	}
}
