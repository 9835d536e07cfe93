package daemon

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

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

// TestGrantJournalSurvivesRestartsTornLinesAndTheOldFormat: the grant
// journal is replayed at start (a grant, a renewal, a kill, kill --all),
// a torn last line is dropped, a corrupt one refuses to start, and the
// whole-file format it replaced is taken in once.
func TestGrantJournalSurvivesRestartsTornLinesAndTheOldFormat(t *testing.T) {
	dir := t.TempDir()
	path, legacy := filepath.Join(dir, "grants.jsonl"), filepath.Join(dir, "sessions.json")
	exp := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	const a, b, c = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", "cccccccccccccccccccccccccccccccc"
	must(t, os.WriteFile(legacy, []byte(`{"`+a+`":{"agent":"old","expires":"`+exp.Format(time.RFC3339)+`"}}`), 0o600))
	g, err := openGrants(path, legacy)
	must(t, err)
	if _, err := os.Stat(legacy); !os.IsNotExist(err) {
		t.Errorf("the old grants file is still there: %v", err)
	}
	now := time.Now()
	must(t, g.add(b, grantRecord{Agent: "coder", Expires: exp}, now))
	must(t, g.add(c, grantRecord{Agent: "coder", Expires: exp}, now))
	must(t, g.remove(c, now))
	must(t, g.close())
	// A crash mid-append leaves a line without its end.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	must(t, err)
	f.WriteString(`{"sid":"` + c + `","agent":"tor`)
	f.Close()
	g, err = openGrants(path, legacy)
	must(t, err)
	got := g.snapshot(now)
	if len(got) != 2 || got[a].Agent != "old" || got[b].Agent != "coder" {
		t.Fatalf("after restart the journal holds %v; want %s (old) and %s (coder)", got, a, b)
	}
	must(t, g.clear())
	must(t, g.close())
	g, err = openGrants(path, legacy)
	must(t, err)
	if n := len(g.snapshot(now)); n != 0 {
		t.Fatalf("after kill --all and a restart %d records remain", n)
	}
	g.close()
	must(t, os.WriteFile(path, []byte("{\"sid\":\"nothex\"}\n"), 0o600))
	if _, err := openGrants(path, legacy); err == nil || !strings.Contains(err.Error(), "corrupt at line 1") {
		t.Fatalf("a corrupt journal = %v, want a refusal naming the line", err)
	}
}

// TestGrantJournalStaysSmall: a long run of grants and kills compacts the
// journal to about what is live.
func TestGrantJournalStaysSmall(t *testing.T) {
	path := filepath.Join(t.TempDir(), "grants.jsonl")
	g, err := openGrants(path, "")
	must(t, err)
	defer g.close()
	now, exp := time.Now(), time.Now().Add(time.Hour)
	for i := range 5000 {
		sid := fmt.Sprintf("%032x", i)
		must(t, g.add(sid, grantRecord{Agent: "a", Expires: exp}, now))
		must(t, g.remove(sid, now))
	}
	fi, err := os.Stat(path)
	must(t, err)
	if fi.Size() > 2*compactAt*120 {
		t.Fatalf("after 10,000 changes with nothing live the journal is %d bytes", fi.Size())
	}
}
