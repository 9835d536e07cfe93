package daemon

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokfence/tokfence/daemon/api"
	"github.com/tokfence/tokfence/daemon/audit"
	"github.com/tokfence/tokfence/daemon/layout"
)

var soakFor = flag.Duration("soak", 0, "run TestSoak for this long (make test runs it for 2m; longer by hand)")

func openFDs() int {
	ents, _ := os.ReadDir("/proc/self/fd")
	return len(ents)
}

// TestSoak runs mixed traffic — plain and streamed completions, model
// listings, out-of-scope requests — while sessions are granted and killed
// and the policy file is rewritten, valid and invalid. At the end no
// goroutine or fd has leaked, the audit chain verifies, every answered
// request has a response record and every forwarded one a request record.
func TestSoak(t *testing.T) {
	if *soakFor == 0 {
		t.Skip("pass -soak 2m to run")
	}
	dir := shortTempDir(t)
	pf := filepath.Join(dir, "policy.toml")
	must(t, os.WriteFile(pf, []byte("version = 1\n"), 0o600))
	e := startProxyEnv(t, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if strings.Contains(string(body), `"stream":true`) {
			w.Header().Set("Content-Type", "text/event-stream")
			for i := 0; i < 20; i++ {
				fmt.Fprintf(w, "data: {\"choices\":[{\"delta\":{\"content\":\"t%d\"}}]}\n\n", i)
				w.(http.Flusher).Flush()
			}
			io.WriteString(w, "data: [DONE]\n\n")
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"choices":[{"message":{"content":"ok"}}],"usage":{"prompt_tokens":10,"completion_tokens":5}}`)
	}, func(c *Config) { c.PolicyFile = pf })
	e.up.record = false
	var forwarded atomic.Int64
	inner := e.up.Config.Handler
	e.up.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		forwarded.Add(1)
		inner.ServeHTTP(w, r)
	})
	e.do(t, false, "GET", "/openai/v1/models", "", nil) // warm up
	runtime.GC()
	baseG, baseFD := runtime.NumGoroutine(), openFDs()

	ctx, cancel := context.WithTimeout(context.Background(), *soakFor)
	defer cancel()
	var sent atomic.Int64
	var tokens sync.Map // session -> token
	grant := func() {
		g, err := e.client.Grant(ctx, api.GrantRequest{Agent: fmt.Sprintf("a%d", time.Now().UnixNano()%7), Providers: []string{"openai"}, Models: []string{"gpt-4o*"}})
		if err == nil {
			tokens.Store(g.Session, g.Token)
		}
	}
	for i := 0; i < 4; i++ {
		grant()
	}
	bad := e.grant(t, api.GrantRequest{Agent: "misbehaving", Models: []string{"gpt-4o*"}})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // a progress line every 15 s: make soak is otherwise silent for minutes
		defer wg.Done()
		start, tick := time.Now(), time.NewTicker(15*time.Second)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				t.Logf("soak: %v of %v, %d requests answered, %d forwarded", time.Since(start).Round(time.Second), *soakFor, sent.Load(), forwarded.Load())
			}
		}
	}()
	for w := 0; w < 6; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				var tok string
				tokens.Range(func(_, v any) bool { tok = v.(string); return i%3 != 0 })
				body, path, method := chatBody, "/openai/v1/chat/completions", "POST"
				switch i % 5 {
				case 1:
					body = `{"model":"gpt-4o","stream":true}`
				case 2:
					body, method, path = "", "GET", "/openai/v1/models"
				case 3:
					if i%50 == 3 { // a misbehaving session: out of scope, its risk rises
						body, tok = `{"model":"o1-pro"}`, bad.Token
					}
				}
				req, _ := http.NewRequestWithContext(ctx, method, e.baseURL()+path, strings.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+tok)
				resp, err := e.tcp.Do(req)
				if err != nil {
					continue // cancelled at the end of the soak, before a reply
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				sent.Add(1)
			}
		}()
	}
	wg.Add(1)
	go func() { // grants, kills and policy reloads
		defer wg.Done()
		for i := 0; ctx.Err() == nil; i++ {
			time.Sleep(150 * time.Millisecond)
			grant()
			if i%3 == 0 {
				tokens.Range(func(k, _ any) bool {
					e.client.Kill(ctx, api.KillRequest{Session: k.(string)})
					tokens.Delete(k)
					return false
				})
			}
			policy := "version = 1\n"
			if i%5 == 4 {
				policy = "version = 1\n[[rule]]\nto = \"PURPLE\"\n" // invalid: must be kept out
			}
			os.WriteFile(pf+".tmp", []byte(policy), 0o600)
			os.Rename(pf+".tmp", pf)
		}
	}()
	wg.Wait()
	// Pooled keep-alive connections are not leaks: close them on both hops.
	e.tcp.CloseIdleConnections()
	e.d.transport.(*http.Transport).CloseIdleConnections()
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > baseG+10 && time.Now().Before(deadline) {
		e.tcp.CloseIdleConnections()
		e.d.transport.(*http.Transport).CloseIdleConnections()
		time.Sleep(100 * time.Millisecond)
	}
	if g := runtime.NumGoroutine(); g > baseG+10 {
		buf := make([]byte, 1<<20)
		t.Fatalf("goroutines %d, started with %d:\n%s", g, baseG, buf[:runtime.Stack(buf, true)])
	}
	if fd := openFDs(); fd > baseFD+10 {
		t.Fatalf("open fds %d, started with %d", fd, baseFD)
	}
	e.stop()
	res, err := audit.Verify(layout.StateDir(e.cfg.StateDir).Audit())
	if err != nil {
		t.Fatalf("audit verify after soak: %v", err)
	}
	var requests, responses, interrupted int64
	audit.Read(layout.StateDir(e.cfg.StateDir).Audit(), audit.Filter{}, func(r audit.Record) error {
		switch r.Event {
		case audit.EventRequest:
			requests++
		case audit.EventResponse:
			responses++
			if r.Status == 401 || r.Status == 499 || r.Status >= 502 {
				interrupted++ // killed or abandoned, possibly after its request record
			}
		}
		return nil
	})
	t.Logf("soak %v: %d requests answered, %d forwarded, %d audit records", *soakFor, sent.Load(), forwarded.Load(), res.Records)
	if responses < sent.Load() {
		t.Fatalf("%d requests answered but only %d response records", sent.Load(), responses)
	}
	if forwarded.Load() < sent.Load()/2 {
		t.Fatalf("only %d of %d requests were forwarded: the soak is not exercising the proxy", forwarded.Load(), sent.Load())
	}
	// Nothing reaches the upstream unrecorded. A request recorded but never
	// forwarded is one that a kill or the end of the soak cut in between,
	// and it has an interrupted response record.
	if requests < forwarded.Load() || requests > forwarded.Load()+interrupted {
		t.Fatalf("%d request records, the upstream saw %d requests, %d were interrupted", requests, forwarded.Load(), interrupted)
	}
}
