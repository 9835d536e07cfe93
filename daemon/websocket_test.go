package daemon

import (
	"bufio"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokfence/tokfence/daemon/api"
	"github.com/tokfence/tokfence/daemon/audit"
	"github.com/tokfence/tokfence/daemon/ctl"
	"github.com/tokfence/tokfence/daemon/layout"
	"github.com/tokfence/tokfence/keystore/keystoretest"
)

// wsPeer is one end of a test WebSocket. It has a codec of its own, not
// the daemon's, so that the two cannot share a misreading of RFC 6455.
type wsPeer struct {
	c    net.Conn
	br   *bufio.Reader
	mask bool // a client's frames are masked
}

type testFrame struct {
	fin     bool
	op      byte
	payload []byte
}

func (p *wsPeer) writeFrame(fin bool, op byte, payload []byte) error {
	b0 := op
	if fin {
		b0 |= 0x80
	}
	var mbit byte
	if p.mask {
		mbit = 0x80
	}
	hdr := []byte{b0}
	switch n := len(payload); {
	case n < 126:
		hdr = append(hdr, mbit|byte(n))
	case n < 1<<16:
		hdr = binary.BigEndian.AppendUint16(append(hdr, mbit|126), uint16(n))
	default:
		hdr = binary.BigEndian.AppendUint64(append(hdr, mbit|127), uint64(n))
	}
	data := append([]byte(nil), payload...)
	if p.mask {
		var key [4]byte
		rand.Read(key[:])
		hdr = append(hdr, key[:]...)
		for i := range data {
			data[i] ^= key[i%4]
		}
	}
	_, err := p.c.Write(append(hdr, data...))
	return err
}

func (p *wsPeer) send(op byte, payload string) error { return p.writeFrame(true, op, []byte(payload)) }

func (p *wsPeer) readFrame() (testFrame, error) {
	var h [2]byte
	if _, err := io.ReadFull(p.br, h[:]); err != nil {
		return testFrame{}, err
	}
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var b [2]byte
		if _, err := io.ReadFull(p.br, b[:]); err != nil {
			return testFrame{}, err
		}
		n = uint64(binary.BigEndian.Uint16(b[:]))
	case 127:
		var b [8]byte
		if _, err := io.ReadFull(p.br, b[:]); err != nil {
			return testFrame{}, err
		}
		n = binary.BigEndian.Uint64(b[:])
	}
	var key [4]byte
	masked := h[1]&0x80 != 0
	if masked {
		if _, err := io.ReadFull(p.br, key[:]); err != nil {
			return testFrame{}, err
		}
	}
	if masked == p.mask {
		return testFrame{}, fmt.Errorf("frame masked = %v, the wrong way for this side", masked)
	}
	payload := make([]byte, n)
	if _, err := io.ReadFull(p.br, payload); err != nil {
		return testFrame{}, err
	}
	if masked {
		for i := range payload {
			payload[i] ^= key[i%4]
		}
	}
	return testFrame{fin: h[0]&0x80 != 0, op: h[0] & 0x0f, payload: payload}, nil
}

// next returns the next whole message or control frame.
func (p *wsPeer) next() (byte, string, error) {
	var op byte
	var msg []byte
	for {
		f, err := p.readFrame()
		if err != nil {
			return 0, "", err
		}
		if f.op >= 0x8 {
			return f.op, string(f.payload), nil
		}
		if f.op != 0 {
			op = f.op
		}
		msg = append(msg, f.payload...)
		if f.fin {
			return op, string(msg), nil
		}
	}
}

// closeOf returns the code and reason of a close payload.
func closeOf(payload string) (int, string) {
	if len(payload) < 2 {
		return closeNoStatus, ""
	}
	return int(binary.BigEndian.Uint16([]byte(payload))), payload[2:]
}

func closeMsg(code int, reason string) string {
	return string(binary.BigEndian.AppendUint16(nil, uint16(code))) + reason
}

// expectClose reads until a close frame and returns its code and reason.
func (p *wsPeer) expectClose(t testing.TB) (int, string) {
	t.Helper()
	p.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		op, msg, err := p.next()
		if err != nil {
			t.Fatalf("reading to the close frame: %v", err)
		}
		if op == byte(opClose) {
			return closeOf(msg)
		}
	}
}

// wsUpstream is a fake provider that accepts a WebSocket on any path and
// hands the connection to serve; extra header lines go into its 101.
func wsUpstream(serve func(p *wsPeer, r *http.Request), extra ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
			http.Error(w, "want a websocket", http.StatusUpgradeRequired)
			return
		}
		c, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer c.Close()
		head := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " +
			wsAccept(r.Header.Get("Sec-WebSocket-Key")) + "\r\n"
		for _, h := range extra {
			head += h + "\r\n"
		}
		io.WriteString(c, head+"\r\n")
		serve(&wsPeer{c: c, br: brw.Reader}, r)
	}
}

// serveResponses plays the Responses API: it answers each response.create
// with a response's events, returns pings, and echoes a close. got gets
// every message it receives.
func serveResponses(got chan<- string) func(*wsPeer, *http.Request) {
	return func(p *wsPeer, _ *http.Request) {
		for n := 1; ; {
			op, msg, err := p.next()
			if err != nil {
				return
			}
			switch op {
			case byte(opPing):
				p.send(byte(opPong), msg)
				continue
			case byte(opClose):
				p.send(byte(opClose), msg)
				return
			}
			got <- msg
			for _, ev := range responseEvents(n, "Hello") {
				p.send(byte(opText), ev)
			}
			n++
		}
	}
}

// responseEvents are the events of response n, whose text is text.
func responseEvents(n int, text string) []string {
	id := fmt.Sprintf("resp_%d", n)
	half := len(text) / 2
	return []string{
		`{"type":"response.created","response":{"id":"` + id + `","status":"in_progress","usage":null}}`,
		`{"type":"response.output_text.delta","item_id":"msg_1","output_index":0,"content_index":0,"delta":"` + text[:half] + `"}`,
		`{"type":"response.output_text.delta","item_id":"msg_1","output_index":0,"content_index":0,"delta":"` + text[half:] + `"}`,
		`{"type":"response.completed","response":{"id":"` + id + `","status":"completed","usage":{"input_tokens":120,` +
			`"input_tokens_details":{"cached_tokens":100},"output_tokens":12,"output_tokens_details":{"reasoning_tokens":0},"total_tokens":132}}}`,
	}
}

const responseCreate = `{"type":"response.create","model":"gpt-5-codex","input":[{"type":"message","role":"user","content":[{"type":"input_text","text":"hi"}]}],"store":false}`

// dialWS opens a WebSocket to path over TCP, or the socket when viaUnix.
// It returns the agent's end once the daemon has switched, else nil and
// the refusal.
func (e *proxyEnv) dialWS(t testing.TB, viaUnix bool, path string, hdr map[string]string) (*wsPeer, *http.Response) {
	t.Helper()
	if viaUnix {
		return dialWSAt(t, "unix", e.cfg.Socket, e.d.tcpAddr, path, hdr)
	}
	return dialWSAt(t, "tcp", e.d.tcpAddr, e.d.tcpAddr, path, hdr)
}

// dialWSAt is dialWS to any listener.
func dialWSAt(t testing.TB, network, addr, host, path string, hdr map[string]string) (*wsPeer, *http.Response) {
	t.Helper()
	c, err := net.Dial(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	var k [16]byte
	rand.Read(k[:])
	key := base64.StdEncoding.EncodeToString(k[:])
	req := "GET " + path + " HTTP/1.1\r\nHost: " + host + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: " + key + "\r\nSec-WebSocket-Version: 13\r\n"
	for k, v := range hdr {
		req += k + ": " + v + "\r\n"
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, req+"\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("handshake: %v", err)
	}
	c.SetDeadline(time.Time{})
	if resp.StatusCode != http.StatusSwitchingProtocols {
		return nil, resp
	}
	if got := resp.Header.Get("Sec-WebSocket-Accept"); got != wsAccept(key) {
		t.Fatalf("Sec-WebSocket-Accept = %q, want %q", got, wsAccept(key))
	}
	return &wsPeer{c: c, br: br, mask: true}, resp
}

// readResponse reads the agent's side of one response: its events up to
// response.completed, answering nothing. It returns the text of the deltas.
func readResponse(t testing.TB, p *wsPeer) string {
	t.Helper()
	p.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	defer p.c.SetReadDeadline(time.Time{})
	var text strings.Builder
	for {
		op, msg, err := p.next()
		if err != nil {
			t.Fatalf("reading a response: %v", err)
		}
		if op == byte(opClose) {
			code, reason := closeOf(msg)
			t.Fatalf("closed %d %q in the middle of a response", code, reason)
		}
		if i := strings.Index(msg, `"delta":"`); i >= 0 {
			text.WriteString(strings.TrimSuffix(msg[i+len(`"delta":"`):], `"}`))
		}
		if strings.Contains(msg, `"response.completed"`) {
			return text.String()
		}
	}
}

// auditRecords returns the trail's records of event (every event if "").
func auditRecords(e *proxyEnv, event string) []audit.Record {
	var out []audit.Record
	audit.Read(layout.StateDir(e.cfg.StateDir).Audit(), audit.Filter{Event: event}, func(r audit.Record) error {
		out = append(out, r)
		return nil
	})
	return out
}

// wsResponseRecord waits for the response record of the WebSocket of
// session sid, written when its connection ends.
func wsResponseRecord(t *testing.T, e *proxyEnv, sid string) audit.Record {
	t.Helper()
	var rec audit.Record
	waitUntil(t, "the websocket's response record", func() bool {
		for _, r := range auditRecords(e, audit.EventResponse) {
			if r.Session == sid && r.Detail["upgrade"] == "websocket" {
				rec = r
				return true
			}
		}
		return false
	})
	return rec
}

func TestWebSocketResponsesExchange(t *testing.T) {
	for _, viaUnix := range []bool{false, true} {
		t.Run(map[bool]string{false: "tcp", true: "unix"}[viaUnix], func(t *testing.T) {
			got := make(chan string, 10)
			e := startProxyEnv(t, wsUpstream(serveResponses(got)))
			g := e.grant(t, api.GrantRequest{Models: []string{"gpt-5*"}})
			agent, resp := e.dialWS(t, viaUnix, "/openai/v1/responses", map[string]string{"Authorization": "Bearer " + g.Token,
				"Sec-WebSocket-Extensions": "permessage-deflate; client_max_window_bits", "OpenAI-Beta": "responses_websockets=2026-02-06"})
			if agent == nil {
				b, _ := io.ReadAll(resp.Body)
				t.Fatalf("handshake = %d %s, want 101", resp.StatusCode, b)
			}
			if ext := resp.Header.Get("Sec-WebSocket-Extensions"); ext != "" {
				t.Fatalf("the daemon's 101 names extensions %q", ext)
			}
			// One response.create in two fragments, a ping between them.
			half := len(responseCreate) / 2
			agent.writeFrame(false, byte(opText), []byte(responseCreate[:half]))
			agent.writeFrame(true, byte(opPing), []byte("are you there"))
			agent.writeFrame(true, byte(opContinue), []byte(responseCreate[half:]))
			agent.c.SetReadDeadline(time.Now().Add(10 * time.Second))
			if op, msg, err := agent.next(); err != nil || op != byte(opPong) || msg != "are you there" {
				t.Fatalf("after a ping: %d %q %v, want its pong", op, msg, err)
			}
			if text := readResponse(t, agent); text != "Hello" {
				t.Fatalf("response text = %q, want Hello", text)
			}
			if msg := <-got; msg != responseCreate {
				t.Fatalf("upstream got %q, want the response.create byte for byte", msg)
			}
			agent.send(byte(opText), strings.Replace(responseCreate, `"hi"`, `"again"`, 1))
			readResponse(t, agent)
			agent.send(byte(opClose), closeMsg(closeNormal, "bye"))
			if code, reason := agent.expectClose(t); code != closeNormal || reason != "bye" {
				t.Fatalf("close echoed as %d %q", code, reason)
			}

			seen := e.up.requests()[0]
			if seen.Header.Get("Authorization") != "Bearer "+fakeOpenAIKey || len(seen.Header.Values("Authorization")) != 1 {
				t.Errorf("upstream Authorization = %q, want the real key once", seen.Header.Values("Authorization"))
			}
			for k, vs := range seen.Header {
				for _, v := range vs {
					if strings.Contains(v, g.Token) {
						t.Errorf("upstream saw the capability token in %s", k)
					}
				}
			}
			if v := seen.Header.Values("Sec-Websocket-Extensions"); len(v) > 0 {
				t.Errorf("upstream was offered extensions %q", v)
			}
			if seen.Header.Get("OpenAI-Beta") == "" || seen.Header.Get("Sec-Websocket-Version") != "13" {
				t.Errorf("upstream handshake headers = %v", seen.Header)
			}

			rec := wsResponseRecord(t, e, g.Session)
			want := audit.Usage{InputTokens: 240, OutputTokens: 24, CachedTokens: 200}
			if rec.Usage == nil || *rec.Usage != want || rec.Model != "gpt-5-codex" || rec.Status != 101 {
				t.Errorf("response record: usage %+v, model %q, status %d; want %+v of gpt-5-codex, 101", rec.Usage, rec.Model, rec.Status, want)
			}
			if d := rec.Detail; d["calls"] != "2" || d["messages_in"] != "2" || d["messages_out"] != "8" || d["frames_in"] != "5" ||
				d["frames_out"] != "10" || d["close"] != "1000 by agent" || rec.BytesIn != int64(2*len(responseCreate)+3) {
				t.Errorf("response record detail = %v, bytes in %d", d, rec.BytesIn)
			}
			opened := false
			for _, r := range auditRecords(e, audit.EventRequest) {
				opened = opened || (r.Session == g.Session && r.Detail["upgrade"] == "websocket" && r.Path == "/v1/responses")
			}
			if !opened {
				t.Errorf("no request record for the websocket's opening")
			}
			if s := sessionRisk(t, e, g.Session); s.Risk != "GREEN" {
				t.Errorf("session after a clean exchange = %s", s.Risk)
			}
		})
	}
}

// TestWebSocketSecretsFromTheAgentAreCaught: a held key, a canary or
// another session's token in the agent's frames never reaches the
// upstream, turns the session RED and closes the socket with 1008.
func TestWebSocketSecretsFromTheAgentAreCaught(t *testing.T) {
	msg := func(secret string) string {
		return strings.Replace(responseCreate, `"hi"`, `"here it is: `+secret+`"`, 1)
	}
	tests := []struct {
		name string
		send func(a *wsPeer, secret string)
		// up is the message the upstream gets before the one that
		// completes the secret, if any.
		up func(secret string) string
	}{
		{"in one frame", func(a *wsPeer, s string) { a.send(byte(opText), msg(s)) }, nil},
		{"split across two fragments", func(a *wsPeer, s string) {
			m := msg(s)
			i := strings.Index(m, s) + len(s)/2
			a.writeFrame(false, byte(opText), []byte(m[:i]))
			a.writeFrame(true, byte(opContinue), []byte(m[i:]))
		}, nil},
		{"split across two messages", func(a *wsPeer, s string) {
			a.send(byte(opText), s[:len(s)/2])
			a.send(byte(opText), s[len(s)/2:])
		}, func(s string) string { return s[:len(s)/2] }},
		{"base64 in a ping", func(a *wsPeer, s string) {
			a.send(byte(opPing), base64.StdEncoding.EncodeToString([]byte(s))[:min(124, len(s)*4/3)])
		}, nil},
	}
	for _, what := range []string{"held key", "canary"} {
		for _, tt := range tests {
			if what == "canary" && strings.Contains(tt.name, "ping") {
				continue // a canary is longer than a ping can carry in base64
			}
			t.Run(what+" "+tt.name, func(t *testing.T) {
				got, upDone := make(chan string, 10), make(chan struct{})
				e := startProxyEnv(t, wsUpstream(func(p *wsPeer, r *http.Request) {
					defer close(upDone)
					serveResponses(got)(p, r)
				}))
				g := e.grant(t, api.GrantRequest{})
				bystander := e.grant(t, api.GrantRequest{Agent: "bystander"})
				secret := fakeOpenAIKey
				if what == "canary" {
					secret = canaryOf(t, g)
				}
				agent, resp := e.dialWS(t, false, "/openai/v1/responses", bearer(g.Token))
				if agent == nil {
					t.Fatalf("handshake = %d", resp.StatusCode)
				}
				tt.send(agent, secret)
				code, reason := agent.expectClose(t)
				if code != closePolicy {
					t.Fatalf("closed with %d %q, want 1008", code, reason)
				}
				if strings.Contains(reason, secret[:12]) {
					t.Fatalf("the close reason quotes the secret: %q", reason)
				}
				if _, _, err := agent.next(); err == nil {
					t.Fatalf("the socket stayed open after its close frame")
				}
				select {
				case <-upDone:
				case <-time.After(10 * time.Second):
					t.Fatal("the upstream connection stayed open")
				}
				var upstreamGot []string
				for len(got) > 0 {
					upstreamGot = append(upstreamGot, <-got)
				}
				// A held key's first half is 28 characters, which hold one
				// of its fragments (keyFragments): it is caught at once.
				if want := 0; tt.up != nil && what != "held key" {
					if len(upstreamGot) != 1 || upstreamGot[0] != tt.up(secret) {
						t.Fatalf("upstream got %q, want only the first half's message", upstreamGot)
					}
				} else if len(upstreamGot) != want {
					t.Fatalf("upstream got %q, want nothing", upstreamGot)
				}
				if s := sessionRisk(t, e, g.Session); s.Risk != "GONE" {
					t.Fatalf("session = %s, want RED (revoked)", s.Risk)
				}
				if s := sessionRisk(t, e, bystander.Session); s.Risk != "GREEN" {
					t.Fatalf("bystander = %s, want GREEN", s.Risk)
				}
				hit := false
				for _, r := range auditRecords(e, audit.EventSensorHit) {
					hit = hit || (r.Session == g.Session && r.Direction == "request" && r.Rule != "")
				}
				if !hit {
					t.Fatalf("no sensor_hit record names the hit")
				}
				rec := wsResponseRecord(t, e, g.Session)
				if !strings.HasPrefix(rec.Detail["close"], "1008 by daemon") || !strings.Contains(rec.Error, "closed") {
					t.Fatalf("response record: close %q, error %q", rec.Detail["close"], rec.Error)
				}
				secrets := [][]byte{[]byte(fakeOpenAIKey), []byte(g.Token), []byte(canaryOf(t, g))}
				keystoretest.AssertNoLeakIn(t, "daemon log", []byte(e.logs.String()), secrets)
				keystoretest.AssertNoLeaks(t, secrets, time.Time{}, nil, e.cfg.StateDir, e.cfg.Socket)
			})
		}
	}
}

// TestWebSocketSecretsFromTheUpstreamAreCaught: a canary in the
// upstream's frames, whole or split across two deltas, turns the session
// RED and closes the agent's socket with 1008; the agent never gets the
// frame that completes it. So does the provider key, echoed.
func TestWebSocketSecretsFromTheUpstreamAreCaught(t *testing.T) {
	var secret string
	var mu sync.Mutex
	split := func(n int) func(p *wsPeer, _ *http.Request) {
		return func(p *wsPeer, _ *http.Request) {
			if _, _, err := p.next(); err != nil {
				return
			}
			mu.Lock()
			s := secret
			mu.Unlock()
			for _, piece := range []string{"sure: ", s[:len(s)/n], s[len(s)/n:], " done"} {
				p.send(byte(opText), `{"type":"response.output_text.delta","delta":"`+piece+`"}`)
			}
			p.next() // until the daemon hangs up
		}
	}
	for _, tt := range []struct {
		name string
		n    int // 1: whole, in the first delta; 2: split across two
	}{{"whole", 1}, {"split across two deltas", 2}} {
		t.Run("canary "+tt.name, func(t *testing.T) {
			e := startProxyEnv(t, wsUpstream(split(tt.n)))
			g := e.grant(t, api.GrantRequest{})
			mu.Lock()
			secret = canaryOf(t, g)
			mu.Unlock()
			agent, _ := e.dialWS(t, false, "/openai/v1/responses", bearer(g.Token))
			agent.send(byte(opText), responseCreate)
			var received strings.Builder
			agent.c.SetReadDeadline(time.Now().Add(10 * time.Second))
			for {
				op, msg, err := agent.next()
				if err != nil {
					t.Fatalf("before the close frame: %v", err)
				}
				if op == byte(opClose) {
					if code, reason := closeOf(msg); code != closePolicy {
						t.Fatalf("closed with %d %q, want 1008", code, reason)
					}
					break
				}
				received.WriteString(msg)
			}
			if strings.Contains(received.String(), secret) || (tt.n > 1 && strings.Contains(received.String(), secret[len(secret)/tt.n:])) {
				t.Fatalf("the agent got the canary's last piece: %s", received.String())
			}
			if s := sessionRisk(t, e, g.Session); s.Risk != "GONE" {
				t.Fatalf("session = %s, want RED", s.Risk)
			}
		})
	}
	t.Run("provider key echoed", func(t *testing.T) {
		// The key the daemon injected, reflected back towards the agent:
		// never forwarded, and RED, as for an HTTP reply.
		e := startProxyEnv(t, wsUpstream(func(p *wsPeer, _ *http.Request) {
			p.next()
			p.send(byte(opText), `{"type":"response.output_text.delta","delta":"the key is `+fakeOpenAIKey+`"}`)
			p.next()
		}))
		g := e.grant(t, api.GrantRequest{})
		agent, _ := e.dialWS(t, false, "/openai/v1/responses", bearer(g.Token))
		agent.send(byte(opText), responseCreate)
		agent.c.SetReadDeadline(time.Now().Add(10 * time.Second))
		for {
			op, msg, err := agent.next()
			if err != nil {
				t.Fatalf("before the close frame: %v", err)
			}
			if strings.Contains(msg, fakeOpenAIKey[8:]) {
				t.Fatalf("the agent got the key: %s", msg)
			}
			if op == byte(opClose) {
				if code, reason := closeOf(msg); code != closePolicy {
					t.Fatalf("closed with %d %q, want 1008", code, reason)
				}
				break
			}
		}
		if s := sessionRisk(t, e, g.Session); s.Risk != "GONE" {
			t.Fatalf("session = %s, want RED", s.Risk)
		}
	})
}

// TestWebSocketHandshakeRefusals: the handshake is checked as any request,
// before the upstream is dialled.
func TestWebSocketHandshakeRefusals(t *testing.T) {
	e := startProxyEnv(t, wsUpstream(serveResponses(make(chan string, 10))))
	g := e.grant(t, api.GrantRequest{})
	anthropicOnly := e.grant(t, api.GrantRequest{Providers: []string{"anthropic"}})
	killed := e.grant(t, api.GrantRequest{})
	if _, err := e.client.Kill(t.Context(), api.KillRequest{Session: killed.Session}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		hdr  map[string]string
		want int
	}{
		{"no token", nil, 401},
		{"a forged token", bearer(g.Token[:len(g.Token)-4] + "AAAA"), 401},
		{"a killed session's token", bearer(killed.Token), 401},
		{"a token without the provider", bearer(anthropicOnly.Token), 403},
		{"the token only in a subprotocol", map[string]string{"Sec-WebSocket-Protocol": "openai-insecure-api-key." + g.Token}, 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			agent, resp := e.dialWS(t, false, "/openai/v1/responses", tt.hdr)
			if agent != nil || resp.StatusCode != tt.want {
				t.Fatalf("handshake = %d, want %d", resp.StatusCode, tt.want)
			}
		})
	}
	if e.up.count() != 0 {
		t.Fatalf("the upstream was dialled %d times", e.up.count())
	}
}

// TestOtherUpgradesAreStillRefused: only a well-formed WebSocket handshake
// on a provider's WebSocket path is let through; h2c, CONNECT and
// websockets anywhere else get the refusals they always did.
func TestOtherUpgradesAreStillRefused(t *testing.T) {
	e := startProxyEnv(t, wsUpstream(serveResponses(make(chan string, 10))))
	g := e.grant(t, api.GrantRequest{Providers: []string{"openai", "anthropic"}})
	ws := "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
	auth := "Authorization: Bearer " + g.Token + "\r\n"
	host := "Host: " + e.d.tcpAddr + "\r\n"
	tests := []struct{ name, raw, want string }{
		{"websocket on a chat path", "GET /openai/v1/chat/completions HTTP/1.1\r\n" + host + ws + auth, "400"},
		{"websocket on another provider", "GET /anthropic/v1/responses HTTP/1.1\r\n" + host + ws + auth, "400"},
		{"websocket below the path", "GET /openai/v1/responses/x HTTP/1.1\r\n" + host + ws + auth, "400"},
		{"websocket with a dot segment", "GET /openai/v1/x/../responses HTTP/1.1\r\n" + host + ws + auth, "400"},
		{"websocket by POST", "POST /openai/v1/responses HTTP/1.1\r\n" + host + ws + auth + "Content-Length: 0\r\n", "400"},
		{"websocket with a body", "GET /openai/v1/responses HTTP/1.1\r\n" + host + ws + auth + "Content-Length: 2\r\n\r\n{}", "400"},
		{"websocket version 8", "GET /openai/v1/responses HTTP/1.1\r\n" + host + strings.Replace(ws, "13", "8", 1) + auth, "400"},
		{"websocket without a key", "GET /openai/v1/responses HTTP/1.1\r\n" + host + strings.Replace(ws, "Sec-WebSocket-Key", "X-Key", 1) + auth, "400"},
		{"websocket and h2c at once", "GET /openai/v1/responses HTTP/1.1\r\n" + host + strings.Replace(ws, "Upgrade: websocket", "Upgrade: websocket, h2c", 1) + auth, "400"},
		{"websocket with HTTP2-Settings", "GET /openai/v1/responses HTTP/1.1\r\n" + host + ws + auth + "HTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n", "400"},
		{"h2c on the websocket path", "GET /openai/v1/responses HTTP/1.1\r\n" + host + "Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n" + auth, "400"},
		{"a browser's websocket", "GET /openai/v1/responses HTTP/1.1\r\n" + host + ws + auth + "Origin: https://evil.example\r\n", "403"},
		{"CONNECT", "CONNECT api.openai.com:443 HTTP/1.1\r\n" + host, "4"}, // 405, or 421 for its Host
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := tt.raw
			if !strings.HasSuffix(raw, "{}") {
				raw += "\r\n"
			}
			if resp := rawRequest(t, e.d.tcpAddr, raw); !strings.HasPrefix(resp, "HTTP/1.1 "+tt.want) {
				t.Fatalf("-> %q, want %s", firstLine(resp), tt.want)
			}
		})
	}
	if e.up.count() != 0 {
		t.Fatalf("the upstream saw %d requests", e.up.count())
	}
}

// TestUpstreamHandshakeIsChecked: an upstream that answers with an
// extension the daemon never offered (it would compress the frames past
// the sensors) or a subprotocol no one asked for is refused with a 502; a
// held key in its 101's headers is RED, as in any reply's.
func TestUpstreamHandshakeIsChecked(t *testing.T) {
	tests := []struct {
		name  string
		extra string
		want  int
		red   bool
	}{
		{"an extension", "Sec-WebSocket-Extensions: permessage-deflate", http.StatusBadGateway, false},
		{"a subprotocol not offered", "Sec-WebSocket-Protocol: chat", http.StatusBadGateway, false},
		{"the key in a header", "X-Echo: " + fakeOpenAIKey, http.StatusUnauthorized, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := startProxyEnv(t, wsUpstream(serveResponses(make(chan string, 10)), tt.extra))
			g := e.grant(t, api.GrantRequest{})
			agent, resp := e.dialWS(t, false, "/openai/v1/responses", bearer(g.Token))
			if agent != nil || resp.StatusCode != tt.want {
				t.Fatalf("handshake = %d, want %d", resp.StatusCode, tt.want)
			}
			if b, _ := io.ReadAll(resp.Body); strings.Contains(string(b), fakeOpenAIKey[8:]) || resp.Header.Get("X-Echo") != "" {
				t.Fatalf("the refusal carries the key: %s", b)
			}
			if s := sessionRisk(t, e, g.Session); (s.Risk == "GONE") != tt.red {
				t.Fatalf("session = %s, want RED %v", s.Risk, tt.red)
			}
		})
	}
}

func TestKillEndsAnOpenWebSocket(t *testing.T) {
	upGone := make(chan struct{})
	e := startProxyEnv(t, wsUpstream(func(p *wsPeer, r *http.Request) {
		defer close(upGone)
		serveResponses(make(chan string, 10))(p, r)
	}))
	g := e.grant(t, api.GrantRequest{})
	agent, _ := e.dialWS(t, false, "/openai/v1/responses", bearer(g.Token))
	agent.send(byte(opText), responseCreate)
	readResponse(t, agent)
	killed := time.Now()
	if _, err := e.client.Kill(t.Context(), api.KillRequest{Session: g.Session}); err != nil {
		t.Fatal(err)
	}
	if code, reason := agent.expectClose(t); code != closePolicy || !strings.Contains(reason, "killed") {
		t.Fatalf("after kill: close %d %q, want 1008 session was killed", code, reason)
	}
	if _, _, err := agent.next(); err == nil {
		t.Fatal("the agent's socket stayed open")
	}
	select {
	case <-upGone:
	case <-time.After(10 * time.Second):
		t.Fatal("the upstream connection stayed open")
	}
	t.Logf("kill to close: %v", time.Since(killed))
}

func TestOversizedFramesCloseCleanly(t *testing.T) {
	t.Run("from the agent", func(t *testing.T) {
		got := make(chan string, 10)
		e := startProxyEnv(t, wsUpstream(serveResponses(got)), func(c *Config) { c.MaxBodyBytes = 1 << 10 })
		g := e.grant(t, api.GrantRequest{})
		agent, _ := e.dialWS(t, false, "/openai/v1/responses", bearer(g.Token))
		// The header alone declares too much: the daemon need not wait for the payload.
		io.WriteString(agent.c, "\x81\xfe\x08\x00\x00\x00\x00\x00")
		if code, _ := agent.expectClose(t); code != closeTooBig {
			t.Fatalf("closed with %d, want 1009", code)
		}
		if len(got) != 0 {
			t.Fatal("the upstream got the oversized message")
		}
	})
	t.Run("from the upstream", func(t *testing.T) {
		e := startProxyEnv(t, wsUpstream(func(p *wsPeer, _ *http.Request) {
			p.next()
			p.send(byte(opText), strings.Repeat("x", 2<<10))
			p.next()
		}), func(c *Config) { c.MaxBodyBytes = 1 << 10 })
		g := e.grant(t, api.GrantRequest{})
		agent, _ := e.dialWS(t, false, "/openai/v1/responses", bearer(g.Token))
		agent.send(byte(opText), responseCreate)
		if code, _ := agent.expectClose(t); code != closeTooBig {
			t.Fatalf("closed with %d, want 1009", code)
		}
	})
}

func TestWebSocketUpstreamIdleTimeout(t *testing.T) {
	e := startProxyEnv(t, wsUpstream(func(p *wsPeer, _ *http.Request) { p.next() }),
		func(c *Config) { c.UpstreamIdleTimeout.Duration = 200 * time.Millisecond })
	g := e.grant(t, api.GrantRequest{})
	agent, _ := e.dialWS(t, false, "/openai/v1/responses", bearer(g.Token))
	if code, reason := agent.expectClose(t); code != closeGoingAway || !strings.Contains(reason, "sent nothing") {
		t.Fatalf("an idle upstream: close %d %q, want 1001", code, reason)
	}
}

// TestWebSocketCallsAreAdmittedOneByOne: each response.create is checked
// against the grant as a request would be.
func TestWebSocketCallsAreAdmittedOneByOne(t *testing.T) {
	tests := []struct {
		name  string
		grant api.GrantRequest
		msgs  []string
		code  int
	}{
		{"a model outside the grant", api.GrantRequest{Models: []string{"gpt-4o-mini"}}, []string{responseCreate}, closePolicy},
		{"a model hidden from a grant that limits models", api.GrantRequest{Models: []string{"gpt-5*"}},
			[]string{`{"type":"response.create","model":"gpt-5","model":"o1-pro"}`}, closePolicy},
		{"type named twice", api.GrantRequest{}, []string{`{"type":"response.steer","type":"response.create","model":"gpt-5"}`}, closePolicy},
		{"past --max-requests", api.GrantRequest{MaxRequests: 1}, []string{responseCreate, responseCreate}, closePolicy},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := make(chan string, 10)
			e := startProxyEnv(t, wsUpstream(serveResponses(got)))
			g := e.grant(t, tt.grant)
			agent, resp := e.dialWS(t, false, "/openai/v1/responses", bearer(g.Token))
			if agent == nil {
				t.Fatalf("handshake = %d", resp.StatusCode)
			}
			for i, m := range tt.msgs {
				agent.send(byte(opText), m)
				if i < len(tt.msgs)-1 {
					readResponse(t, agent)
				}
			}
			if code, reason := agent.expectClose(t); code != tt.code {
				t.Fatalf("closed %d %q, want %d", code, reason, tt.code)
			}
			if len(got) != len(tt.msgs)-1 {
				t.Fatalf("the upstream got %d messages, want %d", len(got), len(tt.msgs)-1)
			}
		})
	}
}

// TestWebSocketGoesOverHTTP1ToAnHTTP2Upstream: the upstream transport
// speaks HTTP/2 where it can, but an upgrade needs HTTP/1.1 and gets it.
func TestWebSocketGoesOverHTTP1ToAnHTTP2Upstream(t *testing.T) {
	protos := make(chan int, 10)
	handler := func(w http.ResponseWriter, r *http.Request) {
		protos <- r.ProtoMajor
		if r.Header.Get("Upgrade") == "" {
			io.WriteString(w, `{"usage":{"prompt_tokens":1,"completion_tokens":1}}`)
			return
		}
		wsUpstream(serveResponses(make(chan string, 10)))(w, r)
	}
	e := startTLSProxyEnv(t, handler)
	g := e.grant(t, api.GrantRequest{})
	if resp, body := e.do(t, false, "POST", "/openai/v1/chat/completions", chatBody, bearer(g.Token)); resp.StatusCode != 200 {
		t.Fatalf("plain request = %d %s", resp.StatusCode, body)
	}
	agent, resp := e.dialWS(t, false, "/openai/v1/responses", bearer(g.Token))
	if agent == nil {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("handshake over TLS = %d %s", resp.StatusCode, b)
	}
	agent.send(byte(opText), responseCreate)
	readResponse(t, agent)
	if a, b := <-protos, <-protos; a != 2 || b != 1 {
		t.Fatalf("upstream saw HTTP/%d for the request and HTTP/%d for the upgrade; want 2 and 1", a, b)
	}
}

// startTLSProxyEnv is startProxyEnv with the openai provider pointed at a
// TLS upstream that offers HTTP/2, and the daemon's own upstream
// transport (newUpstreamTransport) trusting it.
func startTLSProxyEnv(t *testing.T, h http.HandlerFunc) *proxyEnv {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	srv.EnableHTTP2 = true
	srv.StartTLS()
	t.Cleanup(srv.Close)
	cfg := testConfig(t)
	cfg.TCP = "127.0.0.1:0"
	cfg.AuditSync = AuditSyncNever
	cfg.Providers = map[string]ProviderConfig{"openai": {BaseURL: srv.URL}}
	e := newEnv(t, cfg)
	tr := newUpstreamTransport(cfg)
	tr.TLSClientConfig.RootCAs = x509.NewCertPool()
	tr.TLSClientConfig.RootCAs.AddCert(srv.Certificate())
	e.d.transport = tr
	e.d.proxy = e.d.newReverseProxy()
	must(t, e.keys.SetProviderKey(t.Context(), "openai", mustSecret(fakeOpenAIKey)))
	if err := e.start(); err != nil {
		t.Fatalf("start: %v", err)
	}
	return &proxyEnv{testEnv: e, client: ctl.New(cfg.Socket), tcp: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{Proxy: nil}}}
}

// TestDaemonStopEndsWebSockets: http.Server.Shutdown leaves hijacked
// connections alone; the daemon ends its WebSockets with 1001 itself and
// writes their records before its trail closes.
func TestDaemonStopEndsWebSockets(t *testing.T) {
	e := startProxyEnv(t, wsUpstream(serveResponses(make(chan string, 10))))
	g := e.grant(t, api.GrantRequest{})
	agent, _ := e.dialWS(t, false, "/openai/v1/responses", bearer(g.Token))
	agent.send(byte(opText), responseCreate)
	readResponse(t, agent)
	e.stop()
	if code, reason := agent.expectClose(t); code != closeGoingAway || !strings.Contains(reason, "shutting down") {
		t.Fatalf("at daemon stop: close %d %q, want 1001", code, reason)
	}
	rec := wsResponseRecord(t, e, g.Session)
	if rec.Usage == nil || rec.Detail["close"] != "1001 by daemon" {
		t.Fatalf("response record at stop: usage %+v, close %q", rec.Usage, rec.Detail["close"])
	}
}

func TestWebSocketPathsConfig(t *testing.T) {
	tests := []struct {
		name, toml string
		want       map[string][]string // provider: its WebSocket paths
		err        bool
	}{
		{"built in: openai's Responses API only", "", map[string][]string{"openai": {"/v1/responses"}, "anthropic": nil}, false},
		{"another provider that speaks the Responses API", "[providers.xai]\nwebsocket_paths = [\"/v1/responses\"]\n",
			map[string][]string{"xai": {"/v1/responses"}, "openai": {"/v1/responses"}}, false},
		{"switched off", "[providers.openai]\nwebsocket_paths = []\n", map[string][]string{"openai": {}}, false},
		{"outside the provider's paths", "[providers.openai]\nwebsocket_paths = [\"/admin/ws\"]\n", nil, true},
		{"with a dot segment", "[providers.openai]\nwebsocket_paths = [\"/v1/../ws\"]\n", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var cfg Config
			if err := decodeConfig([]byte(tt.toml), "config.toml", &cfg); err != nil {
				t.Fatalf("decode: %v", err)
			}
			ps, err := BuildProviders(cfg.Providers)
			if (err != nil) != tt.err {
				t.Fatalf("BuildProviders = %v, want error %v", err, tt.err)
			}
			for name, want := range tt.want {
				if got := ps[name].WebSocketPaths; fmt.Sprint(got) != fmt.Sprint(want) {
					t.Errorf("%s websocket paths = %q, want %q", name, got, want)
				}
			}
		})
	}
}
