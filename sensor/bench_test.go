package sensor

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
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

// benchScan scans body as one stream per op. Besides wall time it
// reports cpu-MB/s: the body's bytes over the CPU time of the thread that
// scanned them. On a shared box, where other work takes the cores, wall
// time says more about the neighbours than about the scan, and the
// process's CPU time counts the runtime's idle threads spinning.
func benchScan(b *testing.B, m *Matcher, ctype string, body []byte) {
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cpu0 := threadCPU(b)
	for b.Loop() {
		st := m.NewStream(Request, ctype)
		for i := 0; i < len(body); i += benchChunk {
			st.Write(body[i:min(i+benchChunk, len(body))])
		}
		st.Close()
		st.Release()
	}
	if cpu := threadCPU(b) - cpu0; cpu > 0 {
		b.ReportMetric(float64(len(body))*float64(b.N)/cpu.Seconds()/1e6, "cpu-MB/s")
	}
}

// threadCPU returns the CPU time the calling thread has used so far.
func threadCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(rusageThread, &ru); err != nil {
		b.Fatalf("getrusage: %v", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// rusageThread is RUSAGE_THREAD (Linux), which package syscall does not name.
const rusageThread = 1

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

// codeBody returns about size bytes of a chat request carrying source
// code in a tool result, as an agent sends a file it has read: this
// package's own Go files, JSON-escaped, one message each, over and over.
func codeBody(b testing.TB, size int) []byte {
	files, err := filepath.Glob("*.go")
	if err != nil || len(files) == 0 {
		b.Fatalf("glob *.go: %v (%d files)", err, len(files))
	}
	var out bytes.Buffer
	out.WriteString(`{"model":"claude-sonnet-4","messages":[`)
	for out.Len() < size {
		for _, f := range files {
			src, err := os.ReadFile(f)
			if err != nil {
				b.Fatal(err)
			}
			content, _ := json.Marshal(string(src))
			fmt.Fprintf(&out, `{"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_01","content":%s}]},`, content)
		}
	}
	out.WriteString(`{"role":"user","content":"thanks"}]}`)
	return out.Bytes()
}

// BenchmarkExactPass is the exact-secret pass alone: 100 held secrets in
// all their encodings (about 3,400 forms), no format rules, over 1 MiB of
// chat JSON and over about 1 MiB of source code sent as a tool result.
// The goal is 1 GB/s a core.
func BenchmarkExactPass(b *testing.B) {
	m := mustMatcher(b, benchSecrets(100), Options{})
	for _, c := range []struct {
		name string
		body []byte
	}{{"chat", chatBody(1 << 20)}, {"code", codeBody(b, 1<<20)}} {
		b.Run(c.name, func(b *testing.B) { benchScan(b, m, "application/json", c.body) })
	}
}

// BenchmarkFullPass is BenchmarkExactPass with all the format rules on
// (BenchmarkScanAll's chat body; the goal there is 300 MB/s).
func BenchmarkFullPass(b *testing.B) {
	m := mustMatcher(b, benchSecrets(100), Options{FormatRules: true})
	b.Run("code", func(b *testing.B) { benchScan(b, m, "application/json", codeBody(b, 1<<20)) })
}

// BenchmarkSkim compares the exact pass's fast paths in one run, on
// BenchmarkExactPass's bodies: the block scan (noSkim), the skim alone
// (noLeap) and the leap in front of it (the default); and, with the
// format rules on, the block scan with and without the leap.
func BenchmarkSkim(b *testing.B) {
	exact := mustMatcher(b, benchSecrets(100), Options{})
	rules := mustMatcher(b, benchSecrets(100), Options{FormatRules: true})
	for _, c := range []struct {
		name string
		body []byte
	}{{"chat", chatBody(1 << 20)}, {"code", codeBody(b, 1<<20)}} {
		for _, v := range []struct {
			name string
			m    *Matcher
			off  []*bool
		}{{"block", exact, []*bool{&noSkim, &noLeap}}, {"skim", exact, []*bool{&noLeap}}, {"leap", exact, nil}, {"rules/block", rules, []*bool{&noLeap}}, {"rules/leap", rules, nil}} {
			b.Run(c.name+"/"+v.name, func(b *testing.B) {
				for _, off := range v.off {
					*off = true
					defer func() { *off = false }()
				}
				benchScan(b, v.m, "application/json", c.body)
			})
		}
	}
}

// BenchmarkClassify is the leap's byte classifier over 1 MiB of chat
// JSON, 512 bytes at a time as the leap takes it: each vector classifier
// the machine has, and the generic one.
func BenchmarkClassify(b *testing.B) {
	body := chatBody(1 << 20)
	body = body[:len(body)/512*512]
	m := make([]bmask, 8)
	vbmi, avx2 := hasVBMI, hasAVX2
	defer func() { hasVBMI, hasAVX2 = vbmi, avx2 }()
	for _, v := range []struct {
		name       string
		vbmi, avx2 bool
	}{{"vbmi", true, false}, {"avx2", false, true}, {"generic", false, false}} {
		if v.vbmi && !vbmi || v.avx2 && !avx2 {
			continue
		}
		b.Run(v.name, func(b *testing.B) {
			hasVBMI, hasAVX2 = v.vbmi, v.avx2
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				for i := 0; i < len(body); i += 512 {
					classifyBlocks(body[i:i+512], m)
				}
			}
		})
	}
}

// sseBody returns about size bytes of an OpenAI-style chat stream whose
// events each carry a delta of about delta bytes of prose.
func sseBody(size, delta int) []byte {
	r := rand.New(rand.NewPCG(9, 10))
	var b bytes.Buffer
	for b.Len() < size {
		t := ""
		for len(t) < delta {
			t += benignText(r, 4)
		}
		c, _ := json.Marshal(t[:delta])
		fmt.Fprintf(&b, "data: {\"id\":\"chatcmpl-9Xq2\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":%s},\"finish_reason\":null}]}\n\n", c)
	}
	b.WriteString("data: [DONE]\n\n")
	return b.Bytes()
}

// BenchmarkSSEStream is a 1 MiB streamed reply through the whole sensor
// (100 held secrets, all format rules): events of 1 KiB of delta, as
// BenchmarkProxyLargeStream in ./daemon sends, and of 8 bytes, as a chat
// model streams its tokens.
func BenchmarkSSEStream(b *testing.B) {
	m := mustMatcher(b, benchSecrets(100), Options{FormatRules: true})
	for _, d := range []int{1024, 8} {
		b.Run(fmt.Sprint("delta=", d), func(b *testing.B) { benchScan(b, m, "text/event-stream", sseBody(1<<20, d)) })
	}
}
