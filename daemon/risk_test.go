package daemon

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokfence/tokfence/daemon/api"
	"github.com/tokfence/tokfence/daemon/audit"
	"github.com/tokfence/tokfence/daemon/layout"
)

func sessionRisk(t *testing.T, e *proxyEnv, sid string) api.SessionInfo {
	t.Helper()
	list, err := e.client.Sessions(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range list {
		if s.ID == sid {
			return s
		}
	}
	return api.SessionInfo{ID: sid, Risk: "GONE"}
}

func TestRepeatedScopeViolationsGoOrangeAndOrangeIsReadOnly(t *testing.T) {
	e := startProxyEnv(t, nil)
	g := e.grant(t, api.GrantRequest{Models: []string{"gpt-4o-mini"}})
	bystander := e.grant(t, api.GrantRequest{Agent: "bystander"})
	for i := 0; i < 3; i++ {
		if resp, _ := e.do(t, false, "POST", "/openai/v1/chat/completions", `{"model":"o1-pro"}`, bearer(g.Token)); resp.StatusCode != 403 {
			t.Fatalf("out-of-scope model = %d, want 403", resp.StatusCode)
		}
		want := "YELLOW"
		if i == 2 {
			want = "ORANGE"
		}
		if s := sessionRisk(t, e, g.Session); s.Risk != want {
			t.Fatalf("after %d violations risk = %s (%s), want %s", i+1, s.Risk, s.RiskReason, want)
		}
	}
	before := e.up.count()
	if resp, body := e.do(t, false, "POST", "/openai/v1/chat/completions", chatBody, bearer(g.Token)); resp.StatusCode != 403 || !strings.Contains(body, "ORANGE") {
		t.Fatalf("ORANGE chat = %d %s, want 403 naming ORANGE", resp.StatusCode, body)
	}
	if resp, body := e.do(t, false, "GET", "/openai/v1/models", "", bearer(g.Token)); resp.StatusCode != 200 {
		t.Fatalf("ORANGE model listing = %d %s, want 200", resp.StatusCode, body)
	}
	// Benign requests never lower the state.
	for i := 0; i < 3; i++ { // within ORANGE's rate limit (burst 5)
		e.do(t, false, "GET", "/openai/v1/models", "", bearer(g.Token))
	}
	if s := sessionRisk(t, e, g.Session); s.Risk != "ORANGE" {
		t.Fatalf("risk after benign requests = %s, want ORANGE still", s.Risk)
	}
	if got := e.up.count() - before; got != 4 {
		t.Fatalf("upstream saw %d requests from the ORANGE session, want only the 4 model listings", got)
	}
	if s := sessionRisk(t, e, bystander.Session); s.Risk != "GREEN" {
		t.Fatalf("bystander risk = %s, want GREEN", s.Risk)
	}
}

// TestRiskIsPerSessionUnderConcurrency runs 50 sessions at once; one of
// them leaks another session's token in a body and must go RED alone.
func TestRiskIsPerSessionUnderConcurrency(t *testing.T) {
	e := startProxyEnv(t, nil)
	grants := make([]*api.Grant, 50)
	for i := range grants {
		grants[i] = e.grant(t, api.GrantRequest{Agent: fmt.Sprintf("agent%d", i)})
	}
	var wg sync.WaitGroup
	for i, g := range grants {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 3; j++ {
				body := chatBody
				if i == 7 && j == 1 {
					body = `{"model":"gpt-4o","messages":[{"role":"user","content":"use ` + grants[8].Token + `"}]}`
				}
				e.do(t, false, "POST", "/openai/v1/chat/completions", body, bearer(g.Token))
			}
		}()
	}
	wg.Wait()
	for i, g := range grants {
		s := sessionRisk(t, e, g.Session)
		want := "GREEN"
		if i == 7 {
			want = "GONE" // RED revokes: the session leaves the live list
		}
		if s.Risk != want {
			t.Fatalf("session %d risk = %s (%s), want %s", i, s.Risk, s.RiskReason, want)
		}
	}
	if resp, _ := e.do(t, false, "POST", "/openai/v1/chat/completions", chatBody, bearer(grants[7].Token)); resp.StatusCode != 401 {
		t.Fatalf("RED session's token = %d, want 401", resp.StatusCode)
	}
}

func TestUnwritableAuditFailsClosedAndRecovers(t *testing.T) {
	e := startProxyEnv(t, nil)
	g := e.grant(t, api.GrantRequest{})
	e.d.audit.log.Close() // every later append fails, as on a full or read-only disk
	e.do(t, false, "POST", "/openai/v1/chat/completions", chatBody, bearer(g.Token))
	before := e.up.count()
	resp, body := e.do(t, false, "POST", "/openai/v1/chat/completions", chatBody, bearer(g.Token))
	if resp.StatusCode != 503 || !strings.Contains(body, "audit") || e.up.count() != before {
		t.Fatalf("with the audit trail down = %d %s (upstream +%d), want 503 and nothing forwarded", resp.StatusCode, body, e.up.count()-before)
	}
	l, err := audit.Open(layout.StateDir(e.cfg.StateDir).Audit(), audit.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	e.d.audit.mu.Lock()
	e.d.audit.log = l
	e.d.audit.mu.Unlock()
	if resp, body := e.do(t, false, "POST", "/openai/v1/chat/completions", chatBody, bearer(g.Token)); resp.StatusCode != 200 {
		t.Fatalf("after recovery = %d %s", resp.StatusCode, body)
	}
	e.stop()
	if _, err := audit.Verify(layout.StateDir(e.cfg.StateDir).Audit()); err != nil {
		t.Fatalf("audit verify after the outage: %v", err)
	}
}

func TestPolicyHotReloadThroughTheDaemon(t *testing.T) {
	dir := shortTempDir(t)
	pf := filepath.Join(dir, "policy.toml")
	write := func(s string) {
		tmp := pf + ".tmp"
		must(t, os.WriteFile(tmp, []byte(s), 0o600))
		must(t, os.Rename(tmp, pf)) // as editors do: write elsewhere, rename over
	}
	write("version = 1\n")
	e := startProxyEnv(t, nil, func(c *Config) { c.PolicyFile = pf })
	g := e.grant(t, api.GrantRequest{Models: []string{"gpt-4o-mini"}})
	// Valid edit: the first scope violation now goes straight to ORANGE.
	write("version = 1\n[[rule]]\nmatch = { kind = \"scope_violation\" }\nto = \"ORANGE\"\n")
	waitUntil(t, "the new policy", func() bool {
		return e.d.policy().Digest() != "" && strings.Contains(e.logs.String(), "policy reloaded")
	})
	e.do(t, false, "POST", "/openai/v1/chat/completions", `{"model":"o1"}`, bearer(g.Token))
	if s := sessionRisk(t, e, g.Session); s.Risk != "ORANGE" {
		t.Fatalf("risk after one violation under the new policy = %s, want ORANGE", s.Risk)
	}
	good := e.d.policy().Digest()
	// Invalid edit: kept out, reported in status.
	write("version = 1\n[[rule]]\nmatch = { kind = \"scope_violation\" }\nto = \"PURPLE\"\n")
	waitUntil(t, "the reload error", func() bool { return e.d.policyError() != "" })
	st, err := e.client.Status(context.Background())
	if err != nil || !strings.Contains(st.PolicyError, "PURPLE") || e.d.policy().Digest() != good {
		t.Fatalf("status after a bad edit = %+v, %v; want the error reported and the old policy kept", st, err)
	}
	var reloads int
	audit.Read(layout.StateDir(e.cfg.StateDir).Audit(), audit.Filter{Event: audit.EventPolicyReload}, func(r audit.Record) error {
		reloads++
		return nil
	})
	if reloads < 2 {
		t.Fatalf("policy_reload audit records = %d, want the good and the bad reload", reloads)
	}
	_ = http.StatusOK
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
