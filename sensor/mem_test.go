package sensor

import (
	"runtime"
	"slices"
	"testing"
)

// sseEvents are typical OpenAI and Anthropic stream events: a few hundred
// bytes, no secret, no format keyword.
var sseEvents = [][]byte{
	[]byte(`data: {"id":"chatcmpl-9Xq2","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}` + "\n\n"),
	[]byte(`data: {"id":"chatcmpl-9Xq2","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":" the model"},"finish_reason":null}]}` + "\n\n"),
	[]byte("event: content_block_delta\n" + `data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello! How can I help you with the task-runner today?"}}` + "\n\n"),
	[]byte(`data: {"id":"chatcmpl-9Xq2","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":" returned a stream of tokens, 100% of them \u00e9t\u00e9"},"finish_reason":null}]}` + "\n\n"),
}

// openSSE starts an SSE stream and writes the typical events to it.
func openSSE(m *Matcher) *Stream {
	st := m.NewStream(Response, "text/event-stream")
	for _, ev := range sseEvents {
		st.Write(ev)
	}
	return st
}

// TestStreamMemory checks that an open SSE stream with ordinary traffic
// costs a few kilobytes, not the full windows (about 20 KiB before they
// were allocated on demand).
func TestStreamMemory(t *testing.T) {
	m := mustMatcher(t, benchSecrets(100), Options{FormatRules: true})
	openSSE(m) // warm up the package's lazily built tables
	const n = 500
	streams := make([]*Stream, n)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := range streams {
		streams[i] = openSSE(m)
	}
	runtime.ReadMemStats(&after)
	per := (after.TotalAlloc - before.TotalAlloc) / n
	t.Logf("ring size %d positions; %d bytes allocated per open SSE stream", int(m.window()), per)
	if per > 6<<10 {
		t.Errorf("an open SSE stream allocated %d bytes, want at most %d", per, 6<<10)
	}
	runtime.KeepAlive(streams)
}

// TestStreamGrowsToFullWindow checks that a long run of key characters
// still grows the rings to their full size, so nothing that fits the
// window is lost.
func TestStreamGrowsToFullWindow(t *testing.T) {
	m := mustMatcher(t, benchSecrets(10), Options{FormatRules: true})
	st := m.NewStream(Request, "application/json")
	run := make([]byte, 4*m.window())
	for i := range run {
		run[i] = "abcdefgh"[i%8]
	}
	st.Write([]byte(`{"a":"`))
	for i := 0; i < len(run); i += 7 {
		st.Write(run[i:min(i+7, len(run))])
	}
	st.Write([]byte(`","b":"x"}`))
	if got := len(st.main.ring); got != int(m.window()) {
		t.Errorf("main ring has %d positions after a long run, want %d", got, int(m.window()))
	}
	st.Close()
}

// BenchmarkNewStream is the cost of opening a stream, alone, with a few
// ordinary SSE events written to it, and with a small request body, on
// its own and after a large body went through the pool.
func BenchmarkNewStream(b *testing.B) {
	m := mustMatcher(b, benchSecrets(100), Options{FormatRules: true})
	b.Run("empty", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			m.NewStream(Response, "text/event-stream")
		}
	})
	b.Run("sse-events", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			openSSE(m)
		}
	})
	// scan is one request body's stream, written whole, as the daemon
	// scans a request body.
	scan := func(body []byte) {
		st := m.NewStream(Request, "application/json")
		st.Write(body)
		st.Close()
		st.Release()
	}
	small := chatBody(600)
	b.Run("small", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			scan(small)
		}
	})
	// A small request's stream after a 1 MiB body: the streams are
	// pooled, and what a stream keeps is cleared for the next.
	b.Run("small-after-large-body", func(b *testing.B) {
		scan(chatBody(1 << 20))
		b.ReportAllocs()
		for b.Loop() {
			scan(small)
		}
	})
}

// TestReleaseKeepsNoBodySizedBuffers: a stream that took a 1 MiB body in
// one write keeps none of its body-sized buffers for the next stream,
// which would clear them whole however small it is; a streamed reply's
// buffers are kept.
func TestReleaseKeepsNoBodySizedBuffers(t *testing.T) {
	m := mustMatcher(t, benchSecrets(10), Options{FormatRules: true})
	body := chatBody(1 << 20)
	own := []byte(benchSecrets(1)[0].Value)
	for i := 0; i < 2000; i++ { // a hit per repetition
		body = append(body, own...)
		body = append(body, ' ')
	}
	st := m.NewStream(Request, "application/json")
	_, hits := st.Write(body)
	n := len(hits)
	st.Close()
	if cap(st.buf) < 1<<20 || n < 1000 {
		t.Fatalf("the stream did not grow as the test needs: buf %d, hits %d", cap(st.buf), n)
	}
	st.Release()
	if sp := st.spare; cap(sp.buf) >= 1<<20 || cap(sp.out) >= 1<<20 || cap(sp.hits) >= 1000 {
		t.Errorf("released stream keeps buf %d, out %d, hits %d", cap(sp.buf), cap(sp.out), cap(sp.hits))
	}
	st = m.NewStream(Response, "text/event-stream")
	for range 8 {
		st.Write(sseBody(32<<10, 1024))
	}
	kept := cap(st.buf)
	st.Release()
	if cap(st.spare.buf) != kept || kept == 0 {
		t.Errorf("a streamed reply's buffer of %d bytes was not kept (%d)", kept, cap(st.spare.buf))
	}
}

// TestLargeBodiesShareTheirBuffer: a body-sized buffer a released stream
// gives up goes to the next large body, cleared, and not to small streams;
// the large body scanned in it finds what a fresh buffer would.
func TestLargeBodiesShareTheirBuffer(t *testing.T) {
	m := mustMatcher(t, benchSecrets(10), Options{FormatRules: true})
	body := append(chatBody(1<<20), benchSecrets(1)[0].Value...)
	scan := func() (*Stream, int) {
		st := m.NewStream(Request, "application/json")
		_, hits := st.Write(body)
		n := len(hits)
		_, hits = st.Close()
		return st, n + len(hits)
	}
	st, want := scan()
	if want == 0 {
		t.Fatal("the body's secret was not found")
	}
	first := &st.buf[:1][0]
	st.Release()
	// The race detector drops pooled items at random: there, a buffer
	// that is handed over is checked, but none need be.
	switch v, _ := largeBufs.Get().(*[]byte); {
	case v == nil || &(*v)[0] != first:
		if !raceEnabled {
			t.Fatalf("the released stream's buffer was not handed over")
		}
	case slices.ContainsFunc(*v, func(c byte) bool { return c != 0 }):
		t.Fatalf("the released stream's buffer was handed over with its bytes")
	default:
		largeBufs.Put(v)
	}
	small := m.NewStream(Request, "application/json")
	small.Write([]byte(`{"model":"x"}`))
	if cap(small.buf) > maxKeptBytes {
		t.Errorf("a small stream took a %d-byte buffer", cap(small.buf))
	}
	// Nor one just past the bound: it would hold 1 MiB for 80 KiB.
	mid := m.NewStream(Response, "application/json")
	mid.Write(chatBody(80 << 10))
	if cap(mid.buf) > 4*(80<<10) {
		t.Errorf("an 80 KiB write took a %d-byte buffer", cap(mid.buf))
	}
	mid.Close()
	st, got := scan()
	if got != want {
		t.Errorf("the second large body found %d hits, the first %d", got, want)
	}
	if !raceEnabled && &st.buf[:1][0] != first {
		t.Errorf("the second large body did not reuse the first's buffer")
	}
}
