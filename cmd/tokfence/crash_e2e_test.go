package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tokfence/tokfence/daemon/audit"
)

// TestDaemonSIGKILLedUnderLoad kills the daemon with SIGKILL in the middle
// of traffic, restarts it, and checks that revocations and the audit chain
// survived, that no request was both refused and forwarded, and that every
// request forwarded or answered before the kill is on the trail. The
// daemon runs with the default audit_fsync, whose records are written
// before a request goes upstream and synced later: a SIGKILL must lose
// none of them.
func TestDaemonSIGKILLedUnderLoad(t *testing.T) {
	e, fp, _ := agentEnv(t)
	cfgFile := filepath.Join(e.home, ".config", "tokfence", "config.toml")
	b, err := os.ReadFile(cfgFile)
	if err != nil || !bytes.Contains(b, []byte("audit_fsync = false\n")) {
		t.Fatalf("agentEnv's config = %q, %v; want one that turns audit_fsync off, to turn it back on", b, err)
	}
	if err := os.WriteFile(cfgFile, bytes.Replace(b, []byte("audit_fsync = false\n"), nil, 1), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binPath, "daemon", "--tcp", "127.0.0.1:0")
	cmd.Env = e.env
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the daemon", func() bool { return e.run("", "status").code == 0 })
	grant := func(agent string) (token, base string) {
		r := e.run("", "grant", "--agent", agent, "--provider", "openai", "--format", "env")
		for _, l := range strings.Split(r.stdout, "\n") {
			if v, ok := strings.CutPrefix(l, "export OPENAI_API_KEY="); ok {
				token = strings.Trim(v, "'")
			}
			if v, ok := strings.CutPrefix(l, "export OPENAI_BASE_URL="); ok {
				base = strings.Trim(v, "'")
			}
		}
		if token == "" || base == "" {
			t.Fatalf("grant: %+v", r)
		}
		return token, base
	}
	live, base := grant("survivor")
	dead, _ := grant("victim")
	if r := e.run("", "kill", "--agent", "victim"); r.code != 0 {
		t.Fatalf("kill: %+v", r)
	}

	type outcome struct {
		id     string
		status int // 0: transport error
	}
	var mu sync.Mutex
	var outcomes []outcome
	var wg sync.WaitGroup
	stop := make(chan struct{})
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{Proxy: nil}}
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				id := fmt.Sprintf("w%d-%d", w, i)
				tok := live
				if i%4 == 3 {
					tok = dead // a killed token, refused before forwarding
				}
				// The model names the request on the trail.
				req, _ := http.NewRequest("POST", base+"/chat/completions", strings.NewReader(`{"model":"gpt-4o-mini-`+id+`","messages":[]}`))
				req.Header.Set("Authorization", "Bearer "+tok)
				req.Header.Set("X-Req-Id", id)
				resp, err := hc.Do(req)
				o := outcome{id: id}
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					o.status = resp.StatusCode
				}
				mu.Lock()
				outcomes = append(outcomes, o)
				mu.Unlock()
			}
		}()
	}
	time.Sleep(1500 * time.Millisecond)
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	time.Sleep(300 * time.Millisecond)
	close(stop)
	wg.Wait()

	e.startDaemon("--tcp", "127.0.0.1:0")
	if r := e.run("", "audit", "verify"); r.code != 0 {
		t.Fatalf("audit verify after SIGKILL = %+v", r)
	}
	onTrail, refusals := trailBeforeRestart(t, e)
	newLive, newBase := grant("after")
	for _, c := range []struct {
		tok  string
		want int
	}{{dead, 401}, {live, 200}, {newLive, 200}} {
		out, _ := exec.Command("curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-H", "Authorization: Bearer "+c.tok,
			"-d", `{"model":"gpt-4o-mini","messages":[]}`, newBase+"/chat/completions").Output()
		if string(out) != fmt.Sprint(c.want) {
			t.Fatalf("after restart a token got %s, want %d", out, c.want)
		}
	}
	fp.mu.Lock()
	defer fp.mu.Unlock()
	ok, refused := 0, 0
	for _, o := range outcomes {
		switch {
		case o.status == 200:
			ok++
			if !fp.ids[o.id] {
				t.Errorf("request %s answered 200 but the upstream never saw it", o.id)
			}
		case o.status >= 400 && o.status < 500:
			refused++
			if fp.ids[o.id] {
				t.Errorf("request %s was refused (%d) and also forwarded", o.id, o.status)
			}
		}
	}
	if ok == 0 || refused == 0 {
		t.Fatalf("load was not exercised: %d ok, %d refused of %d", ok, refused, len(outcomes))
	}
	for id := range fp.ids { // every answered 200 is among them (checked above)
		if !onTrail[id] {
			t.Errorf("request %s went upstream but is not on the audit trail after the SIGKILL", id)
		}
	}
	// A refusal's record is its response record, written before the
	// refusal is sent; the refused requests carry no model to name them.
	if refusals < refused {
		t.Errorf("%d requests were refused before the SIGKILL but the trail holds %d refusals", refused, refusals)
	}
	t.Logf("%d requests before the SIGKILL: %d ok, %d refused, %d cut", len(outcomes), ok, refused, len(outcomes)-ok-refused)
}

// trailBeforeRestart reads the trail up to the restarted daemon's start:
// the request ids (from the model) of the request records, and how many
// refusals (401 responses) it holds.
func trailBeforeRestart(t *testing.T, e *cliEnv) (ids map[string]bool, refusals int) {
	t.Helper()
	r := e.run("", "audit", "--json")
	if r.code != 0 {
		t.Fatalf("audit --json = %+v", r)
	}
	ids = map[string]bool{}
	starts := 0
	sc := bufio.NewScanner(strings.NewReader(r.stdout))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var rec audit.Record
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("audit --json line %q: %v", sc.Text(), err)
		}
		switch {
		case rec.Event == audit.EventDaemonStart:
			if starts++; starts == 2 {
				return ids, refusals
			}
		case rec.Event == audit.EventRequest:
			if id, ok := strings.CutPrefix(rec.Model, "gpt-4o-mini-"); ok {
				ids[id] = true
			}
		case rec.Event == audit.EventResponse && rec.Status == http.StatusUnauthorized:
			refusals++
		}
	}
	t.Fatalf("the trail does not show the daemon started twice:\n%s", r.stdout)
	return nil, 0
}
