package sensor

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// benchSecrets returns n held secrets of mixed families.
func benchSecrets(n int) []Secret {
	r := rand.New(rand.NewPCG(5, 6))
	var ss []Secret
	for i := range n {
		f := families[i%(len(families)-1)] // every family but PEM
		ss = append(ss, Secret{ID: fmt.Sprint("s", i), Class: ClassProviderKey, Value: []byte(f.gen(r))})
	}
	return ss
}

// chatBody returns about size bytes of chat-completion style JSON.
func chatBody(size int) []byte {
	r := rand.New(rand.NewPCG(7, 8))
	var b strings.Builder
	b.WriteString(`{"model":"gpt-4o","stream":false,"messages":[`)
	for b.Len() < size {
		fmt.Fprintf(&b, `{"role":"user","content":"%s"},{"role":"assistant","content":"%s\n\n- item %d\n"},`,
			jsonSafe(benignText(r, 40)), jsonSafe(benignText(r, 60)), r.IntN(1000))
	}
	b.WriteString(`{"role":"user","content":"thanks"}]}`)
	return []byte(b.String())
}

const benchChunk = 32 << 10 // a typical read size of the proxy

func benchScan(b *testing.B, m *Matcher, ctype string, body []byte) {
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		st := m.NewStream(Request, ctype)
		for i := 0; i < len(body); i += benchChunk {
			st.Write(body[i:min(i+benchChunk, len(body))])
		}
		st.Close()
	}
}

// BenchmarkScanAll is the whole sensor: 100 held secrets in every encoding
// and all format rules over 1 MiB of chat JSON.
func BenchmarkScanAll(b *testing.B) {
	m := mustMatcher(b, benchSecrets(100), Options{FormatRules: true})
	benchScan(b, m, "application/json", chatBody(1<<20))
}

// BenchmarkExactOnly is the exact-secret pass alone (no format rules),
// for 100 held secrets and, to show how the automaton's size matters, 10.
func BenchmarkExactOnly(b *testing.B) {
	body := chatBody(1 << 20)
	for _, n := range []int{100, 10} {
		b.Run(fmt.Sprint("secrets=", n), func(b *testing.B) {
			benchScan(b, mustMatcher(b, benchSecrets(n), Options{}), "application/json", body)
		})
	}
}

// BenchmarkAutomaton is the raw step of the keyword automaton over the
// body, without the normaliser, the ring, the book or the join lane.
func BenchmarkAutomaton(b *testing.B) {
	m := mustMatcher(b, benchSecrets(100), Options{FormatRules: true})
	body := chatBody(1 << 20)
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	var s uint32
	for b.Loop() {
		for _, c := range body {
			s = m.a.step(s, c) &^ outBit
		}
	}
	_ = s
}

// BenchmarkSSEEvent is the cost of one OpenAI-style SSE event.
func BenchmarkSSEEvent(b *testing.B) {
	m := mustMatcher(b, benchSecrets(100), Options{FormatRules: true})
	ev := []byte(`data: {"id":"chatcmpl-9Xq2","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":" the model"},"finish_reason":null}]}` + "\n\n")
	st := m.NewStream(Response, "text/event-stream")
	b.ReportAllocs()
	b.SetBytes(int64(len(ev)))
	for b.Loop() {
		st.Write(ev)
	}
}

// BenchmarkNewMatcher is the build cost of 10, 100 and 500 secrets and the
// rules: what the daemon paid whenever a session started or ended (each
// adds about five secrets) before Put and Delete; see BenchmarkGrant.
func BenchmarkNewMatcher(b *testing.B) {
	for _, n := range []int{10, 100, 500} {
		b.Run(fmt.Sprint("secrets=", n), func(b *testing.B) {
			ss := benchSecrets(n)
			b.ReportAllocs()
			for b.Loop() {
				mustMatcher(b, ss, Options{FormatRules: true})
			}
		})
	}
}
