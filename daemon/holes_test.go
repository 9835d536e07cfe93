package daemon

import (
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tokfence/tokfence/capability"
	"github.com/tokfence/tokfence/daemon/api"
	"github.com/tokfence/tokfence/daemon/audit"
	"github.com/tokfence/tokfence/daemon/layout"
	"github.com/tokfence/tokfence/daemon/localsock"
)

// Regression tests for the holes an attack run from outside found
// (issue 14). Each attacks one; the item number is in its name's comment.

// TestTokenInTheQueryNeverGoesUpstream (item 3): the capability token in
// ?api_key= (beside a valid Authorization header) or in any other
// parameter, and any parameter named like a credential, stay behind; the
// rest of the query goes through.
func TestTokenInTheQueryNeverGoesUpstream(t *testing.T) {
	e := startProxyEnv(t, nil)
	g := e.grant(t, api.GrantRequest{})
	q := url.Values{"api_key": {g.Token}, "q": {"x" + g.Token + "y"}, "access_token": {"abc"}, "Key": {"k"},
		"limit": {"5"}, "order": {"desc"}}
	resp, body := e.do(t, false, "GET", "/openai/v1/models?"+q.Encode(), "", bearer(g.Token))
	if resp.StatusCode != 200 {
		t.Fatalf("models with a query = %d %s", resp.StatusCode, body)
	}
	got := e.up.requests()[0].RawQuery
	if got != "limit=5&order=desc" || strings.Contains(got, g.Token[len(g.Token)-20:]) {
		t.Fatalf("upstream query = %q, want only limit and order", got)
	}
	if s := sessionRisk(t, e, g.Session); s.Risk != "GREEN" {
		t.Fatalf("the session's own token in the query made it %s: it is misplaced, not leaked", s.Risk)
	}
}

// TestHeldKeyInTheQueryIsCaught (item 3): a held provider key in the
// query string is a secret on its way out, as in a body.
func TestHeldKeyInTheQueryIsCaught(t *testing.T) {
	e := startProxyEnv(t, nil)
	g := e.grant(t, api.GrantRequest{})
	resp, _ := e.do(t, false, "GET", "/openai/v1/models?note="+url.QueryEscape(fakeAnthropicKey), "", bearer(g.Token))
	if resp.StatusCode != 403 || e.up.count() != 0 {
		t.Fatalf("held key in the query = %d, upstream saw %d; want 403 and nothing forwarded", resp.StatusCode, e.up.count())
	}
	if s := sessionRisk(t, e, g.Session); s.Risk != "GONE" {
		t.Fatalf("risk after a held key in the query = %s, want RED, which kills the session", s.Risk)
	}
}

// TestOwnAndNominatedHeadersStayBehind (items 3, 10): X-Tokfence-*
// headers are the daemon's, never the provider's; a header the client
// names in Connection is hop-by-hop, even an allow-listed one; the
// injected key survives any Connection trick.
func TestOwnAndNominatedHeadersStayBehind(t *testing.T) {
	e := startProxyEnv(t, nil)
	g := e.grant(t, api.GrantRequest{Providers: []string{"anthropic"}})
	raw := "POST /anthropic/v1/messages HTTP/1.1\r\nHost: " + e.d.tcpAddr + "\r\nx-api-key: " + g.Token +
		"\r\nAnthropic-Version: 2023-06-01\r\nAnthropic-Beta: tools\r\nX-Custom: 1\r\nX-Kept: 1" +
		"\r\nX-Tokfence-Debug: 1\r\nX-Tokfence-Agent: root\r\nConnection: keep-alive, Anthropic-Beta, x-custom, X-Api-Key" +
		"\r\nContent-Length: 2\r\n\r\n{}"
	if resp := rawRequest(t, e.d.tcpAddr, raw); !strings.HasPrefix(resp, "HTTP/1.1 200") {
		t.Fatalf("request = %q", firstLine(resp))
	}
	h := e.up.requests()[0].Header
	for _, gone := range []string{"Anthropic-Beta", "X-Custom", "X-Tokfence-Debug", "X-Tokfence-Agent", "Connection"} {
		if v := h.Values(gone); len(v) > 0 {
			t.Errorf("upstream got %s: %q", gone, v)
		}
	}
	if h.Get("Anthropic-Version") != "2023-06-01" || h.Get("X-Kept") != "1" || h.Get("X-Api-Key") != fakeAnthropicKey {
		t.Errorf("upstream headers = %v, want anthropic-version, X-Kept and the real key", h)
	}
}

// TestRevocationsTamperedWithRefuseToStart (item 4): an agent running as
// the user deletes revocations.json, replaces it with a valid empty list,
// or puts back a copy from before the kill. Each would revive the killed
// token; the keychain anchor notices and the daemon refuses to start.
// --reset-revocations starts a new list in which every earlier token,
// killed or not, is dead.
func TestRevocationsTamperedWithRefuseToStart(t *testing.T) {
	e := startProxyEnv(t, nil)
	path := layout.StateDir(e.cfg.StateDir).Revocations()
	g := e.grant(t, api.GrantRequest{Agent: "victim"})
	other := e.grant(t, api.GrantRequest{Agent: "bystander"})
	e.do(t, false, "POST", "/openai/v1/chat/completions", chatBody, bearer(g.Token))
	before, _ := os.ReadFile(path) // may be absent: nothing was killed yet
	if _, err := e.client.Kill(context.Background(), api.KillRequest{Session: g.Session}); err != nil {
		t.Fatal(err)
	}
	e.stop()
	killed, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, tamper := range []struct {
		name string
		do   func() error
	}{
		{"deleted", func() error { return os.Remove(path) }},
		{"an empty list", func() error {
			return os.WriteFile(path, []byte(`{"version":1,"epoch":0,"sessions":{},"tokens":{}}`+"\n"), 0o600)
		}},
		{"rolled back", func() error {
			if before == nil {
				return os.Remove(path)
			}
			return os.WriteFile(path, before, 0o600)
		}},
	} {
		must(t, tamper.do())
		err := newEnvWith(t, e.cfg, e.mem, e.clock).start()
		if !errors.Is(err, capability.ErrAnchorMismatch) || !strings.Contains(err.Error(), "refusing to start") {
			t.Fatalf("start with revocations.json %s = %v, want a refusal naming the anchor", tamper.name, err)
		}
		must(t, os.WriteFile(path, killed, 0o600))
	}
	// Put back as it was, it starts, and the kill holds.
	e2 := e.restart(t)
	if resp, _ := e2.do(t, false, "POST", "/openai/v1/chat/completions", chatBody, bearer(g.Token)); resp.StatusCode != 401 {
		t.Fatalf("killed token after restart = %d, want 401", resp.StatusCode)
	}
	e2.stop()
	must(t, os.Remove(path))
	cfg := e.cfg
	cfg.ResetRevocations = true
	e3 := newEnvWith(t, cfg, e.mem, e.clock)
	if err := e3.start(); err != nil {
		t.Fatalf("start with --reset-revocations: %v", err)
	}
	p3 := *e
	p3.testEnv = e3
	for _, tok := range []string{g.Token, other.Token} {
		if resp, _ := p3.do(t, false, "POST", "/openai/v1/chat/completions", chatBody, bearer(tok)); resp.StatusCode != 401 {
			t.Fatalf("a token from before the reset = %d, want 401", resp.StatusCode)
		}
	}
}

// TestRevocationsAnchorSurvivesACrashMidWrite: the anchor allows both the
// old and the new file while a write is under way, so a crash between
// the anchor's update and the rename (or just after the rename) never
// stops the next start; once a start has seen the file, only it is
// allowed.
func TestRevocationsAnchorSurvivesACrashMidWrite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "revocations.json")
	a := &memAnchor{}
	r, err := capability.OpenAnchoredRevocations(path, nil, a, false)
	if err != nil {
		t.Fatal(err)
	}
	must(t, r.RevokeSession(strings.Repeat("a", 32), time.Now().Add(time.Hour)))
	old, _ := os.ReadFile(path)
	a.failFrom = a.stores + 2 // the write's first Store (both files) lands, its second fails
	if err := r.RevokeSession(strings.Repeat("b", 32), time.Now().Add(time.Hour)); err == nil {
		t.Fatal("a write whose anchor failed reported success")
	}
	cur, _ := os.ReadFile(path)
	midWrite := a.st
	for _, c := range []struct {
		name   string
		onDisk []byte
	}{{"before the rename", old}, {"after the rename", cur}} { // the last leaves cur seen
		name, onDisk := c.name, c.onDisk
		must(t, os.WriteFile(path, onDisk, 0o600))
		a.st, a.failFrom = midWrite, 0
		if _, err := capability.OpenAnchoredRevocations(path, nil, a, false); err != nil {
			t.Fatalf("open after a crash %s: %v", name, err)
		}
	}
	must(t, os.WriteFile(path, old, 0o600)) // the anchor now allows cur only
	if _, err := capability.OpenAnchoredRevocations(path, nil, a, false); !errors.Is(err, capability.ErrAnchorMismatch) {
		t.Fatalf("open of the older file once the newer was seen = %v, want %v", err, capability.ErrAnchorMismatch)
	}
}

// memAnchor is a capability.Anchor in memory whose Store fails from its
// failFrom-th call on (0: never).
type memAnchor struct {
	st               capability.AnchorState
	ok               bool
	stores, failFrom int
}

func (m *memAnchor) Load() (capability.AnchorState, bool, error) { return m.st, m.ok, nil }

func (m *memAnchor) Store(st capability.AnchorState) error {
	m.stores++
	if m.failFrom > 0 && m.stores >= m.failFrom {
		return errors.New("keychain gone")
	}
	m.st, m.ok = st, true
	return nil
}

// TestCompressedRepliesAreRefused (item 2): an upstream that ignores
// Accept-Encoding: identity and answers gzip (here a gzipped echo of the
// key, small or streamed) or any other coding gets a 502; not one byte the
// sensors could not read reaches the agent, and the key was asked for
// uncompressed.
func TestCompressedRepliesAreRefused(t *testing.T) {
	for _, c := range []struct{ name, coding, ct string }{
		{"gzip json", "gzip", "application/json"},
		{"gzip sse", "gzip", "text/event-stream"},
		{"br", "br", "application/json"},
		{"two codings", "identity, gzip", "application/json"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var accept string
			e := startProxyEnv(t, func(w http.ResponseWriter, r *http.Request) {
				accept = r.Header.Get("Accept-Encoding")
				w.Header().Set("Content-Type", c.ct)
				w.Header().Set("Content-Encoding", c.coding)
				zw := gzip.NewWriter(w)
				io.WriteString(zw, `{"echo":"`+r.Header.Get("Authorization")+`"}`)
				zw.Close()
			})
			g := e.grant(t, api.GrantRequest{})
			resp, body := e.do(t, false, "POST", "/openai/v1/chat/completions", chatBody, map[string]string{
				"Authorization": "Bearer " + g.Token, "Accept-Encoding": "gzip, br"})
			if resp.StatusCode != 502 || !strings.Contains(body, "encoded (compressed) reply") || resp.Header.Get("Content-Encoding") != "" {
				t.Fatalf("compressed reply = %d %v %s, want a 502 naming the encoding", resp.StatusCode, resp.Header, body)
			}
			if accept != "identity" {
				t.Fatalf("upstream was sent Accept-Encoding %q, want identity", accept)
			}
		})
	}
}

// TestFullAuditFromRecordsMoreOfASuspectSession (item 13): the policy's
// full_audit_from (YELLOW built in) was parsed and never used. A GREEN
// session's request records stay lean; once a format-rule hit (a GitHub
// token leaving in a body) makes the session YELLOW, its records (that
// request's included) carry
// the forwarded body's digest and size and the header and query names,
// with no value in them.
func TestFullAuditFromRecordsMoreOfASuspectSession(t *testing.T) {
	e := startProxyEnv(t, nil)
	g := e.grant(t, api.GrantRequest{})
	ghToken := "ghp_R8kL2mQ9vX4tZ7bN1cW5yH3jF6dS0aE2gK8p"
	e.do(t, false, "POST", "/openai/v1/chat/completions", chatBody, bearer(g.Token))
	e.do(t, false, "POST", "/openai/v1/chat/completions", `{"model":"gpt-4o-mini","messages":[{"content":"`+ghToken+`"}]}`, bearer(g.Token))
	if s := sessionRisk(t, e, g.Session); s.Risk != "YELLOW" {
		t.Fatalf("after a GitHub token left in a body the session is %s, want YELLOW", s.Risk)
	}
	e.do(t, false, "POST", "/openai/v1/chat/completions?trace=abc", chatBody, map[string]string{"Authorization": "Bearer " + g.Token, "X-Trace": "t-1"})
	var recs []audit.Record
	audit.Read(layout.StateDir(e.cfg.StateDir).Audit(), audit.Filter{Event: audit.EventRequest, Session: g.Session}, func(r audit.Record) error {
		recs = append(recs, r)
		return nil
	})
	if len(recs) != 3 {
		t.Fatalf("%d request records, want 3", len(recs))
	}
	for i, r := range recs {
		// The second request is the one that made the session YELLOW: it
		// is recorded in full too.
		full := r.Detail["full_audit"] == "true"
		if want := i > 0; full != want {
			t.Errorf("request %d full detail = %v, want %v: %v", i+1, full, want, r.Detail)
		}
	}
	d := recs[2].Detail
	sum := sha256.Sum256([]byte(chatBody))
	if d["body_sha256"] != hex.EncodeToString(sum[:]) || d["body_bytes"] != fmt.Sprint(len(chatBody)) ||
		!strings.Contains(d["headers"], "X-Trace") || d["query"] != "trace" || strings.Contains(fmt.Sprint(d), "t-1") {
		t.Fatalf("full detail = %v, want the body's digest and size and the header and query names only", d)
	}
}

// TestSlowBodiesAndConnectionFloodsDoNotStarveTheOwner (item 6): 300
// unauthenticated clients that send their headers and then one body
// byte each are refused at once and their connections closed (net/http
// no longer drains their bodies, with no deadline, to keep them); an
// authenticated body that trickles is cut once it falls below the body
// rate; a flood of idle connections from one uid is capped, and the
// control socket, with its own budget, still answers another process.
func TestSlowBodiesAndConnectionFloodsDoNotStarveTheOwner(t *testing.T) {
	e := startProxyEnv(t, nil)
	e.d.testOnlyBodyGrace = 300 * time.Millisecond
	g := e.grant(t, api.GrantRequest{})
	slow := make([]net.Conn, 0, 300)
	for range 300 {
		c, err := net.Dial("tcp", e.d.tcpAddr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fmt.Fprintf(c, "POST /openai/v1/chat/completions HTTP/1.1\r\nHost: %s\r\nContent-Length: 100000\r\n\r\nx", e.d.tcpAddr)
		slow = append(slow, c)
	}
	for i, c := range slow {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		b, _ := io.ReadAll(c) // until the daemon closes it
		if !strings.HasPrefix(string(b), "HTTP/1.1 401") {
			t.Fatalf("slow unauthenticated client %d got %q, want a 401 and the connection closed", i, firstLine(string(b)))
		}
	}
	if resp, body := e.do(t, false, "POST", "/openai/v1/chat/completions", chatBody, bearer(g.Token)); resp.StatusCode != 200 {
		t.Fatalf("valid request after the slow clients = %d %s", resp.StatusCode, body)
	}
	// An authenticated body at a byte every 100 ms is cut.
	c, err := net.Dial("tcp", e.d.tcpAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "POST /openai/v1/chat/completions HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nContent-Length: 100000\r\n\r\n", e.d.tcpAddr, g.Token)
	cut := make(chan string, 1)
	go func() {
		b, _ := io.ReadAll(c)
		cut <- string(b)
	}()
	var reply string
trickle:
	for i := 0; i < 600; i++ { // at most a minute
		select {
		case reply = <-cut:
			break trickle
		case <-time.After(100 * time.Millisecond):
			c.Write([]byte("x"))
		}
	}
	if !strings.HasPrefix(reply, "HTTP/1.1 400") || !strings.Contains(reply, "slower than") {
		t.Fatalf("trickled body got %q, want a 400 naming the body rate", reply)
	}
	if e.up.count() != 1 {
		t.Fatalf("upstream saw %d requests, want only the valid one", e.up.count())
	}
	// A flood of idle connections from this uid: past the cap each is
	// closed at once; the proxy serves again as they go.
	var idle []net.Conn
	for range localsock.MaxConnsPerPeer + 20 {
		c, err := net.Dial("tcp", e.d.tcpAddr)
		if err != nil {
			t.Fatal(err)
		}
		idle = append(idle, c)
	}
	// The test's own keep-alive connections count against the uid too,
	// and may be let go by the server while the flood runs: so "about
	// the 20 past the cap", and never more than the cap held open. Those
	// the daemon has not accepted yet look open until it does.
	shut := make([]bool, len(idle))
	closed := 0
	waitUntil(t, "the connections past the cap to be closed", func() bool {
		for i, c := range idle {
			if shut[i] {
				continue
			}
			c.SetReadDeadline(time.Now().Add(5 * time.Millisecond))
			if _, err := c.Read(make([]byte, 1)); err == io.EOF {
				shut[i] = true
				closed++
			}
		}
		return len(idle)-closed <= localsock.MaxConnsPerPeer && closed >= 18
	})
	out, err := exec.Command("curl", "-s", "--max-time", "5", "--unix-socket", e.cfg.Socket, "http://tokfence/v1/status").CombinedOutput()
	if err != nil || !strings.Contains(string(out), `"socket"`) {
		t.Fatalf("control API from another process during the flood = %s, %v", out, err)
	}
	for _, c := range idle {
		c.Close()
	}
	waitUntil(t, "the proxy to serve again", func() bool {
		resp, _ := e.do(t, false, "POST", "/openai/v1/chat/completions", chatBody, bearer(g.Token))
		return resp.StatusCode == 200
	})
}

// TestSmugglingFramesAreRefusedAndTheConnectionClosed (item 11): a
// request with both Content-Length and Transfer-Encoding, or with an
// obs-fold continuation line, is refused and its connection closed, so
// nothing after it on the connection (a smuggled second request) is
// served; honest pipelined, chunked and sized requests are all served.
func TestSmugglingFramesAreRefusedAndTheConnectionClosed(t *testing.T) {
	e := startProxyEnv(t, nil)
	g := e.grant(t, api.GrantRequest{})
	host := "Host: " + e.d.tcpAddr + "\r\nAuthorization: Bearer " + g.Token + "\r\n"
	smuggled := "GET /openai/v1/models HTTP/1.1\r\n" + host + "X-Smuggled: 1\r\n\r\n"
	for _, c := range []struct{ name, first string }{
		{"CL and TE", "POST /openai/v1/chat/completions HTTP/1.1\r\n" + host + "Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n"},
		{"TE and CL, LF only", "POST /openai/v1/chat/completions HTTP/1.1\n" + strings.ReplaceAll(host, "\r\n", "\n") + "Transfer-Encoding: chunked\nContent-Length: 4\n\n2\r\n{}\r\n0\r\n\r\n"},
		{"obs-fold", "POST /openai/v1/chat/completions HTTP/1.1\r\n" + host + "X-Note: a\r\n b\r\nContent-Length: 2\r\n\r\n{}"},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := e.up.count()
			resp := rawExchange(t, e.d.tcpAddr, c.first+smuggled)
			if !strings.HasPrefix(resp, "HTTP/1.1 400") || strings.Count(resp, "HTTP/1.1 ") != 1 {
				t.Fatalf("%s then a second request = %q, want one 400 and the connection closed", c.name, resp)
			}
			if e.up.count() != before {
				t.Fatalf("%s: upstream saw a request", c.name)
			}
		})
	}
	// Honest framings, pipelined on one connection, are all served.
	honest := "POST /openai/v1/chat/completions HTTP/1.1\r\n" + host + "Content-Length: 2\r\n\r\n{}" +
		"POST /openai/v1/chat/completions HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\n\r\n1\r\n{\r\n1;ext=1\r\n}\r\n0\r\nX-Trailer: t\r\n\r\n" +
		"GET /openai/v1/models HTTP/1.1\r\n" + host + "Connection: close\r\n\r\n"
	resp := rawExchange(t, e.d.tcpAddr, honest)
	if n := strings.Count(resp, "HTTP/1.1 200"); n != 3 {
		t.Fatalf("three honest pipelined requests got %d 200s:\n%s", n, resp)
	}
}

func FuzzFramer(f *testing.F) {
	f.Add([]byte("POST / HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}GET / HTTP/1.1\r\n\r\n"), 3)
	f.Add([]byte("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n"), 1)
	f.Fuzz(func(t *testing.T, b []byte, cut int) {
		// However the bytes are split across reads, the notes are the same.
		var whole, split framer
		want := whole.feed(append([]byte(nil), b...), nil)
		if cut <= 0 {
			cut = 1
		}
		var got []framing
		for i := 0; i < len(b); i += cut {
			got = split.feed(append([]byte(nil), b[i:min(i+cut, len(b))]...), got)
		}
		if len(got) != len(want) || whole.lost != split.lost {
			t.Fatalf("split by %d: %d notes (lost %v), whole: %d (lost %v)", cut, len(got), split.lost, len(want), whole.lost)
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("note %d split by %d = %+v, whole = %+v", i, cut, got[i], want[i])
			}
		}
	})
}

// TestFramedConnForgetsServedRequests: a keep-alive connection keeps the
// notes of the requests in flight, not one for every request it carried
// (which grew by a note a request for the connection's life), and each
// request still gets its own note, pipelined or not.
func TestFramedConnForgetsServedRequests(t *testing.T) {
	plain := "GET /openai/v1/models HTTP/1.1\r\nHost: x\r\n\r\n"
	folded := "GET /openai/v1/models HTTP/1.1\r\nHost: x\r\nX-Note: a\r\n b\r\n\r\n"
	conn := &chunkConn{}
	c := &framedConn{Conn: conn}
	buf := make([]byte, 4096)
	read := func(reqs ...string) {
		t.Helper()
		conn.next = []byte(strings.Join(reqs, ""))
		if n, err := c.Read(buf); err != nil || n != len(strings.Join(reqs, "")) {
			t.Fatalf("read = %d, %v", n, err)
		}
	}
	maxCap := 0
	for i := range 10_000 {
		if i%1000 == 999 {
			read(folded)
		} else {
			read(plain)
		}
		if got, want := c.next().fold, i%1000 == 999; got != want {
			t.Fatalf("request %d: fold noted %v, want %v", i, got, want)
		}
		maxCap = max(maxCap, cap(c.notes))
	}
	if maxCap > 2 {
		t.Errorf("one request at a time: the connection kept room for %d notes", maxCap)
	}
	// Pipelined: three header blocks in one read, then asked about in turn.
	read(plain, folded, plain)
	for i, want := range []bool{false, true, false} {
		if got := c.next().fold; got != want {
			t.Fatalf("pipelined request %d: fold noted %v, want %v", i, got, want)
		}
	}
	if len(c.notes) != 0 {
		t.Errorf("%d notes kept after every request was served", len(c.notes))
	}
}

// chunkConn is a connection whose next Read returns next.
type chunkConn struct {
	net.Conn
	next []byte
}

func (c *chunkConn) Read(p []byte) (int, error) {
	n := copy(p, c.next)
	c.next = c.next[n:]
	return n, nil
}

// TestCorrelationHeadersGoUpstream: the headers Codex and other agents
// send to tie requests together reach the provider, spelled as they send
// them (Codex: originator, session_id), while an underscore spelling of
// anything unlisted, a credential above all, still stays behind.
func TestCorrelationHeadersGoUpstream(t *testing.T) {
	e := startProxyEnv(t, nil)
	g := e.grant(t, api.GrantRequest{})
	raw := "POST /openai/v1/responses HTTP/1.1\r\nHost: " + e.d.tcpAddr + "\r\nAuthorization: Bearer " + g.Token +
		"\r\noriginator: codex_cli_rs\r\nsession_id: 0199-aa\r\nthread_id: 0199-bb\r\nConversation-Id: c-1\r\nSession-Id: s-2" +
		"\r\nX_Upstream_Secret: smuggled\r\nX_Custom: 1\r\nContent-Length: 2\r\n\r\n{}"
	if resp := rawRequest(t, e.d.tcpAddr, raw); !strings.HasPrefix(resp, "HTTP/1.1 200") {
		t.Fatalf("request = %q", firstLine(resp))
	}
	h := e.up.requests()[0].Header
	for k, want := range map[string]string{"Originator": "codex_cli_rs", "Session_id": "0199-aa", "Thread_id": "0199-bb", "Conversation-Id": "c-1", "Session-Id": "s-2"} {
		if got := h.Get(k); got != want {
			t.Errorf("upstream %s = %q, want %q (all: %v)", k, got, want, h)
		}
	}
	for _, gone := range []string{"X_upstream_secret", "X_custom"} {
		if v, ok := h[gone]; ok {
			t.Errorf("upstream got %s: %q", gone, v)
		}
	}
}

// TestFragmentsOfTheKeyAreCaught (item 1): an upstream quoting most of
// the key it was sent (46 of its characters, as the attack run saw) hands
// the agent nothing of it past what a masked echo shows, and the session
// is RED; a real provider's masked echo (prefix and last four) passes.
func TestFragmentsOfTheKeyAreCaught(t *testing.T) {
	for _, c := range []struct {
		name  string
		quote func(k string) string
		red   bool
	}{
		{"46 characters quoted", func(k string) string { return k[:46] + "…" }, true},
		{"the middle quoted", func(k string) string { return "…" + k[18:44] + "…" }, true},
		{"masked as OpenAI does", func(k string) string { return k[:8] + strings.Repeat("*", 20) + k[len(k)-4:] }, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := startProxyEnv(t, func(w http.ResponseWriter, r *http.Request) {
				k := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(401)
				io.WriteString(w, `{"error":{"message":"Incorrect API key provided: `+c.quote(k)+`","type":"invalid_request_error"}}`)
			})
			g := e.grant(t, api.GrantRequest{})
			_, body := e.do(t, false, "POST", "/openai/v1/chat/completions", chatBody, bearer(g.Token))
			k := fakeOpenAIKey
			for i := fragmentSkip; i+2*fragmentLen-1 <= len(k); i++ {
				if strings.Contains(body, k[i:i+2*fragmentLen-1]) {
					t.Fatalf("%d characters of the key from %d reached the agent: %s", 2*fragmentLen-1, i, body)
				}
			}
			risk := sessionRisk(t, e, g.Session).Risk
			if red := risk == "GONE"; red != c.red {
				t.Fatalf("session after the echo = %s, want RED %v", risk, c.red)
			}
		})
	}
}

// TestSensorHitRecordsAreBoundedPerRequest: a body repeating the agent's
// own token a thousand times is refused RED with at most maxAuditedHits
// records, and the request's response record counts them all.
func TestSensorHitRecordsAreBoundedPerRequest(t *testing.T) {
	e := startProxyEnv(t, nil)
	g := e.grant(t, api.GrantRequest{})
	other := e.grant(t, api.GrantRequest{Agent: "other"})
	body := `{"model":"gpt-4o-mini","messages":[{"content":"` + strings.Repeat(other.Token+" ", 1000) + `"}]}`
	if resp, _ := e.do(t, false, "POST", "/openai/v1/chat/completions", body, bearer(g.Token)); resp.StatusCode != 403 {
		t.Fatalf("a body repeating a token = %d, want 403", resp.StatusCode)
	}
	if n := countEvents(t, e, audit.EventSensorHit); n != maxAuditedHits {
		t.Fatalf("%d sensor_hit records, want %d", n, maxAuditedHits)
	}
	var counted string
	waitUntil(t, "the response record", func() bool {
		audit.Read(layout.StateDir(e.cfg.StateDir).Audit(), audit.Filter{Event: audit.EventResponse, Session: g.Session}, func(r audit.Record) error {
			counted = r.Detail["sensor_hits"]
			return nil
		})
		return counted != ""
	})
	if n, _ := strconv.Atoi(counted); n < 1000 {
		t.Fatalf("response record counts %q hits, want the 1000", counted)
	}
}
