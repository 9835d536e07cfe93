package daemon

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tokfence/tokfence/daemon/api"
)

// fakeUpstreamConn is a switched upstream connection in memory: writes are
// counted and dropped, reads come from src.
type fakeUpstreamConn struct {
	src     []byte
	written int64
}

func (c *fakeUpstreamConn) Read(p []byte) (int, error) {
	n := copy(p, c.src)
	c.src = c.src[n:]
	return n, nil
}

func (c *fakeUpstreamConn) Write(p []byte) (int, error) {
	c.written += int64(len(p))
	return len(p), nil
}
func (c *fakeUpstreamConn) Close() error { return nil }

// benchRelay is a relay of a live session of a running daemon, between
// nothing and a fake upstream connection.
func benchRelay(b *testing.B) (*wsRelay, *fakeUpstreamConn) {
	e := startProxyEnv(b, nil)
	g := e.grant(b, api.GrantRequest{Agent: "bench", TTL: "1h"})
	d := e.d
	claims, err := d.auth.Verify(g.Token)
	if err != nil {
		b.Fatal(err)
	}
	sess, err := d.sessions.GetOrRestore(claims)
	if err != nil {
		b.Fatal(err)
	}
	rec := &requestRecord{}
	rec.bindSession(claims, sess)
	f := &forward{p: d.providers["openai"], rest: "/v1/responses", token: g.Token, sess: d.live.of(sess, d.clock),
		rec: rec, method: http.MethodPost, claims: claims, upgrade: true}
	f.bind(context.Background(), time.Hour)
	b.Cleanup(f.release)
	up := &fakeUpstreamConn{}
	return d.newRelay(f, up), up
}

// BenchmarkWSRelay measures what the relay costs per byte of frames, with
// all sensors on: parsing, unmasking, scanning, admission (for the agent's
// messages) and framing again, one direction at a time:
//
//	go test -run '^$' -bench WSRelay -benchmem ./daemon/
//
// "deltas" is a reply streamed as the Responses API streams it, in small
// text-delta events; the others are messages of one size each.
func BenchmarkWSRelay(b *testing.B) {
	delta := `{"type":"response.output_text.delta","item_id":"msg_1","output_index":0,"content_index":0,"delta":"token "}`
	prose := func(n int) string {
		words := strings.Repeat("the quick brown fox jumps over the lazy dog; ", n/45+1)[:n]
		return `{"type":"response.output_text.done","text":"` + words + `"}`
	}
	b.Run("upstream-to-agent/deltas", func(b *testing.B) { benchFromUpstream(b, delta, 500) })
	b.Run("upstream-to-agent/64KiB", func(b *testing.B) { benchFromUpstream(b, prose(64<<10), 4) })
	for _, n := range []int{1 << 10, 64 << 10} {
		msg := strings.Replace(responseCreate, `"hi"`, `"`+prose(n)[40:n]+`"`, 1)
		b.Run(fmt.Sprintf("agent-to-upstream/%dKiB", n>>10), func(b *testing.B) { benchFromAgent(b, msg, max(1, 256<<10/n)) })
	}
}

func benchFromUpstream(b *testing.B, msg string, count int) {
	r, up := benchRelay(b)
	var batch []byte
	for range count {
		batch = appendFrame(batch, opText, []byte(msg), false)
	}
	buf := make([]byte, 32<<10) // ReverseProxy's copy buffer
	b.SetBytes(int64(len(batch)))
	b.ReportAllocs()
	for b.Loop() {
		up.src = batch
		for len(up.src) > 0 || r.q.len() > 0 {
			if _, err := r.Read(buf); err != nil {
				b.Fatal(err)
			}
		}
	}
}

func benchFromAgent(b *testing.B, msg string, count int) {
	r, up := benchRelay(b)
	var batch []byte
	for range count {
		batch = appendFrame(batch, opText, []byte(msg), true)
	}
	b.SetBytes(int64(len(batch)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.Write(batch); err != nil {
			b.Fatal(err)
		}
	}
	if r.stopped() || up.written == 0 {
		b.Fatalf("the relay stopped (%v) or forwarded nothing", r.stopped())
	}
}

// BenchmarkWSReader is the codec alone, reading masked 16 KiB frames and
// framing their payloads again: what the relay costs beyond the sensors.
func BenchmarkWSReader(b *testing.B) {
	payload := []byte(strings.Repeat("x", 16<<10))
	var batch []byte
	for range 16 {
		batch = appendFrame(batch, opText, payload, true)
	}
	r := &wsReader{masked: true, max: 1 << 20}
	var out []byte
	b.SetBytes(int64(len(batch)))
	b.ReportAllocs()
	for b.Loop() {
		for i := 0; i < len(batch); i += 32 << 10 {
			r.feed(batch[i:min(i+32<<10, len(batch))], func(op wsOp, p []byte) error {
				out = appendFrame(out[:0], op, p, false)
				return nil
			})
		}
	}
}

// A hijacked connection's bytes are WebSocket frames: the HTTP framing
// follower stops reading them (and holds none of them).
func TestHijackedConnIsNoLongerFollowed(t *testing.T) {
	fc := &framedConn{}
	fc.st.feed([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n\x81\x85"), nil)
	fc.hijacked()
	notes := fc.st.feed([]byte(strings.Repeat("\x81\x05hello", 100)+"\n\nGET / HTTP/1.1\r\n\r\n"), nil)
	if len(notes) != 0 || fc.st.hdr != nil {
		t.Fatalf("after hijack the follower noted %v and holds %d bytes", notes, len(fc.st.hdr))
	}
}
