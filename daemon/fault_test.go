package daemon

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/tokfence/tokfence/daemon/api"
	"github.com/tokfence/tokfence/daemon/audit"
	"github.com/tokfence/tokfence/daemon/layout"
)

func TestUpstreamDyingMidStreamGivesACleanError(t *testing.T) {
	e := startProxyEnv(t, func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, "models") {
			io.WriteString(w, `{"data":[]}`)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		for i := 0; i < 2; i++ {
			fmt.Fprintf(w, "data: {\"choices\":[{\"delta\":{\"content\":\"t%d\"}}]}\n\n", i)
			w.(http.Flusher).Flush()
		}
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close() // the upstream dies mid-stream
		}
	})
	g := e.grant(t, api.GrantRequest{})
	req, _ := http.NewRequest("POST", e.baseURL()+"/openai/v1/chat/completions", strings.NewReader(`{"model":"gpt-4o","stream":true}`))
	req.Header.Set("Authorization", "Bearer "+g.Token)
	resp, err := e.tcp.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.ReadAll(resp.Body)
	resp.Body.Close()
	if err == nil {
		t.Fatal("a stream whose upstream died ended cleanly: the agent cannot tell it was cut")
	}
	if resp, _ := e.do(t, false, "GET", "/openai/v1/models", "", bearer(g.Token)); resp.StatusCode != 200 {
		t.Fatalf("the session after an upstream failure = %d, want 200", resp.StatusCode)
	}
	e.stop()
	if _, err := audit.Verify(layout.StateDir(e.cfg.StateDir).Audit()); err != nil {
		t.Fatalf("audit after the upstream died: %v", err)
	}
}

func TestHungUpstreamTimesOutAndFreesGoroutines(t *testing.T) {
	hang := make(chan struct{})
	defer close(hang)
	e := startProxyEnv(t, func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, "body") {
			w.Header().Set("Content-Type", "text/event-stream")
			io.WriteString(w, "data: {}\n\n")
			w.(http.Flusher).Flush()
		}
		select { // hang until the test ends or the proxy gives up
		case <-hang:
		case <-r.Context().Done():
		}
	}, func(c *Config) {
		c.UpstreamHeaderTimeout.Duration = 300 * time.Millisecond
		c.UpstreamIdleTimeout.Duration = 400 * time.Millisecond
		c.Providers["openai"] = ProviderConfig{BaseURL: c.Providers["openai"].BaseURL, Paths: []string{"/v1/", "/hang/"}}
	})
	g := e.grant(t, api.GrantRequest{})
	e.do(t, false, "GET", "/openai/v1/models", "", bearer(g.Token)) // warm up connections and goroutines
	before := runtime.NumGoroutine()
	for i := 0; i < 5; i++ {
		resp, body := e.do(t, false, "POST", "/openai/hang/headers", chatBody, bearer(g.Token))
		if resp.StatusCode != http.StatusBadGateway && resp.StatusCode != http.StatusGatewayTimeout {
			t.Fatalf("hung headers = %d %s, want 502/504", resp.StatusCode, body)
		}
		req, _ := http.NewRequest("POST", e.baseURL()+"/openai/hang/body", strings.NewReader(chatBody))
		req.Header.Set("Authorization", "Bearer "+g.Token)
		r2, err := e.tcp.Do(req)
		if err == nil {
			_, err = io.ReadAll(r2.Body)
			r2.Body.Close()
		}
		if err == nil {
			t.Fatal("a stream whose upstream went silent was not cut")
		}
	}
	waitUntil(t, "goroutines to be freed", func() bool { return runtime.NumGoroutine() <= before+4 })
}

func TestLockedKeychainGivesClearErrorsAndRecovers(t *testing.T) {
	e := startProxyEnv(t, nil)
	g := e.grant(t, api.GrantRequest{Providers: []string{"anthropic"}})
	e.mem.SetFail(errors.New("org.freedesktop.Secret.Error.IsLocked: prompt dismissed"))
	resp, body := e.do(t, false, "POST", "/anthropic/v1/messages", `{"model":"claude"}`, map[string]string{"x-api-key": g.Token})
	if resp.StatusCode != 503 || !strings.Contains(body, "keychain unavailable") || strings.Contains(body, fakeAnthropicKey) {
		t.Fatalf("locked keychain = %d %s, want 503 naming the keychain", resp.StatusCode, body)
	}
	if e.up.count() != 0 {
		t.Fatal("forwarded without a key")
	}
	e.mem.SetFail(nil)
	if resp, body := e.do(t, false, "POST", "/anthropic/v1/messages", `{"model":"claude"}`, map[string]string{"x-api-key": g.Token}); resp.StatusCode != 200 {
		t.Fatalf("after unlocking = %d %s, want 200", resp.StatusCode, body)
	}
}

// TestAuditDiskFullFailsClosedAndRecovers puts the audit trail on a tiny
// tmpfs and fills it: requests must be refused while nothing can be
// recorded, and served again once space is back, with the chain intact.
func TestAuditDiskFullFailsClosedAndRecovers(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to mount a tmpfs")
	}
	cfg := testConfig(t)
	dir := layout.StateDir(cfg.StateDir).Audit()
	must(t, os.MkdirAll(dir, 0o700))
	must(t, os.Chmod(cfg.StateDir, 0o700))
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=256k,mode=0700", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
	e := startProxyEnv(t, nil, func(c *Config) { c.Socket, c.StateDir = cfg.Socket, cfg.StateDir })
	g := e.grant(t, api.GrantRequest{})
	filler := filepath.Join(dir, "filler")
	f, err := os.Create(filler)
	must(t, err)
	io.Copy(f, io.LimitReader(zeros{}, 1<<20)) // stops at ENOSPC
	f.Close()
	// The active file's last page may still have room for a few records;
	// once a write fails, every request must be refused.
	refused := false
	for i := 0; i < 200 && !refused; i++ {
		before := e.up.count()
		resp, body := e.do(t, false, "POST", "/openai/v1/chat/completions", chatBody, bearer(g.Token))
		if resp.StatusCode == 503 {
			refused = true
			if e.up.count() != before || !strings.Contains(body, "audit") {
				t.Fatalf("refused request %s was forwarded (upstream +%d)", body, e.up.count()-before)
			}
		}
	}
	if !refused {
		t.Fatal("requests were still served with the audit disk full")
	}
	before := e.up.count()
	if resp, _ := e.do(t, false, "POST", "/openai/v1/chat/completions", chatBody, bearer(g.Token)); resp.StatusCode != 503 || e.up.count() != before {
		t.Fatalf("second request with the disk full = %d, want 503 and nothing forwarded", resp.StatusCode)
	}
	must(t, os.Remove(filler))
	if resp, body := e.do(t, false, "POST", "/openai/v1/chat/completions", chatBody, bearer(g.Token)); resp.StatusCode != 200 {
		t.Fatalf("after freeing space = %d %s, want 200", resp.StatusCode, body)
	}
	e.stop()
	if _, err := audit.Verify(dir); err != nil {
		t.Fatalf("audit verify after disk full: %v", err)
	}
	_ = bufio.NewReader
}
