package sensor

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// The block fuzz target is the fast paths' oracle, in the style of age's
// differential tests: the same body, cut at the same points, goes through
// the stream with its fast paths on and with them off (noBlock: every byte
// through the byte-at-a-time path), and each Write and the Close must
// return the same bytes and the same hits, offsets and encodings included.
// The fast paths promise to change nothing but the time taken.

// oracleSecrets are the held secrets of the oracle's matchers: fixture
// keys and a token, the shortest secret the book takes, and one with bytes
// no provider key has (a quote, a colon, a space), which no fast path may
// assume away.
var oracleSecrets = func() []Secret {
	return []Secret{
		fixtureSecrets["openai"], fixtureSecrets["canary"], fixtureSecrets["token"],
		{ID: "short", Class: ClassCanary, Value: []byte("Zq8vX2kM")},
		{ID: "odd", Class: ClassCanary, Value: []byte(`p"ss: w0rd/Zq`)},
	}
}()

// oracleMatchers are the matchers the oracle picks from: held secrets
// with and without the format rules, the rules alone. Without the rules
// they take both ways of the exact pass (see TestOracleCoversFastPaths):
// the skim, with forms of 8 bytes (the short secret) and without, and the
// block scan (the odd secret turns the skim off).
var oracleMatchers = func() []*Matcher {
	red := func(Hit) bool { return true }
	mk := func(ss []Secret, rules bool) *Matcher {
		m, err := NewMatcher(ss, Options{FormatRules: rules, FingerprintKey: []byte("oracle"), Redact: red})
		if err != nil {
			panic(err)
		}
		return m
	}
	plain := oracleSecrets[:4]
	return []*Matcher{mk(plain, false), mk(plain, true), mk(oracleSecrets, false), mk(nil, true), mk(oracleSecrets, true), mk(plain[:3], false), mk(plain[:3], true)}
}()

// oracleInserts are the values the fuzzer can splice into a body: held
// secrets in the encodings an agent might use, a fake key for the format
// rules, and the halves of a split secret.
var oracleInserts = func() []string {
	var ins []string
	encs := slices.Sorted(mapKeys(encoders))
	for _, s := range oracleSecrets[:4] {
		for _, e := range encs {
			ins = append(ins, jsonSafe(encoders[e](string(s.Value))))
		}
	}
	v := string(fixtureSecrets["openai"].Value)
	ins = append(ins, v[:20]+`", "`+v[20:], v[:9]+`" + "`+v[9:], `p\"ss: w0rd\/Zq`, "AKIAQWERTYUIOPASDFGH")
	return ins
}()

var oracleTypes = []string{"application/json", "text/event-stream", "text/plain"}

// scanCalls scans body cut where sizes say (each byte a piece of 1 to 256
// bytes, in turn; the whole body at once if sizes is empty) and returns
// each Write's and the Close's forwarded bytes and hits, rendered.
func scanCalls(m *Matcher, ctype string, body, sizes []byte) []string {
	st := m.NewStream(Response, ctype)
	defer st.Release() // later scans reuse it: the oracle runs on reused streams too
	var calls []string
	for i, k := 0, 0; i < len(body); k++ {
		n := len(body) - i
		if len(sizes) > 0 {
			n = min(n, 1+int(sizes[k%len(sizes)]))
		}
		f, h := st.Write(body[i : i+n])
		calls = append(calls, fmt.Sprintf("%q %v", f, h))
		i += n
	}
	f, h := st.Close()
	// The normalised bytes the main and SSE lanes counted: the leap skips
	// them, and must count them as the byte path would.
	return append(calls, fmt.Sprintf("%q %v", f, h), fmt.Sprintf("main lane at %d, SSE lane at %d", st.main.pos, st.sl.pos))
}

// checkFastPaths is the oracle: body scanned with the fast paths and
// without must give the same calls.
func checkFastPaths(t *testing.T, m *Matcher, ctype string, body, sizes []byte) {
	t.Helper()
	defer func() { noBlock = false }()
	noBlock = false
	got := scanCalls(m, ctype, body, sizes)
	noBlock = true
	want := scanCalls(m, ctype, body, sizes)
	if !slices.Equal(got, want) {
		t.Fatalf("Scan(%q, %s, chunks %v) with the fast paths = %v, want %v", body, ctype, sizes, got, want)
	}
}

// oracleBody splices insert ins (if it names one) into body at position at.
func oracleBody(body []byte, ins uint8, at uint16) []byte {
	if int(ins) >= len(oracleInserts) {
		return body
	}
	k := int(at) % (len(body) + 1)
	return slices.Concat(body[:k], []byte(oracleInserts[ins]), body[k:])
}

// oracleSeeds are bodies with secrets at chunk edges, inside JSON strings
// beside quotes and escapes, split across elements and events, and the
// prose and JSON the fast paths pass over.
func oracleSeeds() []string {
	v := string(fixtureSecrets["openai"].Value)
	c := string(fixtureSecrets["canary"].Value)
	return []string{
		`{"role":"user","content":"the key is ` + v + ` ok"}`,
		`{"a":"` + v[:30] + `\n` + v[30:] + `","b":"\"` + c + `\""}`,
		`["` + v[:12] + `","` + v[12:] + `"]`,
		`x = "` + c[:6] + `" + "` + c[6:] + `";`,
		"data: {\"choices\":[{\"delta\":{\"content\":\"" + v[:40] + "\"}}]}\n\ndata: {\"choices\":[{\"delta\":{\"content\":\"" + v[40:] + "\"}}]}\n\n",
		`{"k":"` + encoders["jsonmix"](c) + `","p":"` + encoders["pctzw"](c) + `"}`,
		"prose “quotes” — 100% of 50%off C:\\\\Users \\u00e9t\\u00e9 " + c + " \u200b" + encoders["zw"](c),
		`{"text":"Zq8vX2kM Zq8vX2k Zq8vX2kMM p\"ss: w0rd\/Zq"}`,
		string(chatBody(2 << 10)),
		// Deltas long enough for the SSE lane's leap: a secret inside one,
		// one split across two, escapes, keywords and a short tail.
		sseEvent(`The answer, in prose: `+strings.Repeat("words and more words, ", 5)+v+` then \"quoted\" text\n\tand AKIA of sk-abc`) +
			sseEvent(strings.Repeat("tokens stream in ", 6)+v[:30]) + sseEvent(v[30:]+strings.Repeat(" more tokens", 8)) +
			sseEvent(strings.Repeat("x", 70)+` \u00e9t\u00e9 \u0041 100% `+c),
		strings.Repeat("func main() { fmt.Println(\"hello\") } // sk-proj- AKIA ", 20),
	}
}

// sseEvent returns an OpenAI-style SSE event whose delta is text (JSON-escaped already).
func sseEvent(text string) string {
	return "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"" + text + "\"}}]}\n\n"
}

// TestOracleCoversFastPaths checks that the oracle's matchers reach every
// fast path: without format rules, the block scan, and the skim behind
// the leap with each of its window tests (the quad filter, when a form is
// short, and the octet filter); with them, the leap with each test in
// front of the block scan, and the block scan alone.
func TestOracleCoversFastPaths(t *testing.T) {
	got := map[string]bool{}
	for _, m := range oracleMatchers {
		f := m.book.flt.Load()
		path := "block scan"
		if !f.odd.Load() {
			path = map[bool]string{false: "leap by octets", true: "leap by quads"}[f.short.Load()]
		}
		got[path+map[bool]string{false: "", true: ", rules"}[m.opts.FormatRules]] = true
	}
	for _, want := range []string{"block scan", "leap by octets", "leap by quads", "block scan, rules", "leap by octets, rules", "leap by quads, rules"} {
		if !got[want] {
			t.Errorf("no oracle matcher without format rules takes the %s", want)
		}
	}
	// The SSE lane's leap: the seed of long deltas takes it in every
	// matcher that leaps (the only jumps of the SSE lane are the leap's).
	var seed string
	for _, s := range oracleSeeds() {
		if strings.Contains(s, "tokens stream in") {
			seed = s
		}
	}
	for i, m := range oracleMatchers {
		if m.book.flt.Load().odd.Load() {
			continue
		}
		st := m.NewStream(Response, "text/event-stream")
		st.Write([]byte(seed))
		if st.Close(); st.sl.resetAt == 0 {
			t.Errorf("oracle matcher %d: the SSE lane never leapt over the seed of long deltas", i)
		}
		st.Release()
	}
}

// TestFastPathsMatchByteScan runs the oracle over its seeds in every
// matcher and content type, whole and in small pieces.
func TestFastPathsMatchByteScan(t *testing.T) {
	for _, body := range oracleSeeds() {
		for _, m := range oracleMatchers {
			for _, ct := range oracleTypes {
				for _, sizes := range [][]byte{nil, {0}, {6, 1, 30}, {63, 200, 2}} {
					checkFastPaths(t, m, ct, []byte(body), sizes)
				}
			}
		}
	}
}

// FuzzBlockScanner is the oracle under the fuzzer: any body, cut anywhere,
// with a held secret or a split one spliced in where the fuzzer says.
func FuzzBlockScanner(f *testing.F) {
	for i, s := range oracleSeeds() {
		for w := range len(oracleMatchers) * len(oracleTypes) {
			f.Add([]byte(s), []byte{6, 1, 30}, uint8(w), uint8(255), uint16(0))
		}
		f.Add([]byte(s), []byte{byte(i * 7), 3, 64}, uint8(i), uint8(255), uint16(0))
		f.Add([]byte(s), []byte{}, uint8(i+2), uint8(i*9), uint16(i*13))
	}
	f.Add([]byte(`{"a":"","b":""}`), []byte{4, 0}, uint8(0), uint8(3), uint16(6))
	f.Fuzz(func(t *testing.T, body, sizes []byte, which, ins uint8, at uint16) {
		body = oracleBody(body, ins, at)
		m := oracleMatchers[int(which)%len(oracleMatchers)]
		ct := oracleTypes[int(which)/len(oracleMatchers)%len(oracleTypes)]
		checkFastPaths(t, m, ct, body, sizes)
	})
}
