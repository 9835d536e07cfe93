package sensor

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// fuzzMatcher holds two fixture secrets and the format rules.
var fuzzMatcher = func() *Matcher {
	m, err := NewMatcher([]Secret{fixtureSecrets["openai"], fixtureSecrets["canary"]},
		Options{FormatRules: true, FingerprintKey: []byte("fuzz"), Redact: func(Hit) bool { return true }})
	if err != nil {
		panic(err)
	}
	return m
}()

// chunked scans body cut into pieces whose sizes cycle through sizes.
func chunked(m *Matcher, ctype string, body []byte, sizes []byte) ([]byte, []Hit) {
	st := m.NewStream(Request, ctype)
	defer st.Release() // later scans reuse it: every test runs on reused streams too
	var out []byte
	var hits []Hit
	for i, k := 0, 0; i < len(body); k++ {
		n := len(body)
		if len(sizes) > 0 {
			n = 1 + int(sizes[k%len(sizes)])%32
		}
		n = min(n, len(body)-i)
		f, h := st.Write(body[i : i+n])
		out, hits = append(out, f...), append(hits, h...)
		i += n
	}
	f, h := st.Close()
	return append(out, f...), append(hits, h...)
}

// checkChunking is the differential check: the hits of a body do not
// depend on how it is cut, and outside SSE neither do the forwarded bytes.
func checkChunking(t *testing.T, ctype string, body, sizes []byte) {
	out1, h1 := chunked(fuzzMatcher, ctype, body, nil)
	out2, h2 := chunked(fuzzMatcher, ctype, body, sizes)
	if g, w := hitLines(h2, true), hitLines(h1, true); !slices.Equal(g, w) {
		t.Fatalf("Scan(%q, chunks %v) = %v, want %v", body, sizes, g, w)
	}
	if ctype != "text/event-stream" && len(body) < fuzzMatcher.MaxHold() && !bytes.Equal(out1, out2) {
		t.Fatalf("Scan(%q, chunks %v) forwarded %q, want %q", body, sizes, out2, out1)
	}
	key := fixtureSecrets["openai"].Value
	if ctype != "text/event-stream" && len(body) < fuzzMatcher.MaxHold() && bytes.Contains(out2, key) {
		t.Fatalf("Scan(%q, chunks %v) forwarded a held secret raw", body, sizes)
	}
}

func FuzzNormaliser(f *testing.F) {
	key := string(fixtureSecrets["openai"].Value)
	for _, s := range []string{
		`a\u0041b`, `\ud83d\ude00`, `\ud83d\`, `%4`, `%E2%80%8B`, "ｓｋ\u200b", `\uff53k-`,
		`{"k":"` + encoders["jsonmix"](key) + `"}`, encoders["pctzw"](key), encoders["zwmix"](key),
	} {
		f.Add([]byte(s), []byte{1, 2, 3})
	}
	f.Fuzz(func(t *testing.T, body, sizes []byte) {
		checkChunking(t, "application/json", body, sizes)
	})
}

func FuzzReassembly(f *testing.F) {
	key := string(fixtureSecrets["openai"].Value)
	f.Add("data: {\"choices\":[{\"delta\":{\"content\":\"", key[:30], key[30:], uint8(7))
	f.Add("[\"", key[:5], key[5:], uint8(1))
	f.Add("x = \"", "AKIAQWERTYUI", "OPASDFGH", uint8(3))
	f.Fuzz(func(t *testing.T, pre, a, b string, cut uint8) {
		sse := "data: {\"choices\":[{\"delta\":{\"content\":\"" + a + "\"}}]}\n\n" +
			"data: {\"choices\":[{\"delta\":{\"content\":\"" + b + "\"}}]}\n\n"
		arr := pre + `["` + a + `", "` + b + `"]`
		sizes := []byte{cut, cut / 2, cut / 3}
		checkChunking(t, "text/event-stream", []byte(sse), sizes)
		checkChunking(t, "application/json", []byte(arr), sizes)
		if a+b != key || strings.ContainsAny(key, `"\%`) {
			return
		}
		for body, ct := range map[string]string{sse: "text/event-stream", arr: "application/json"} {
			_, hits := chunked(fuzzMatcher, ct, []byte(body), []byte{cut})
			if !hasSecret(hits, "openai") {
				t.Fatalf("Scan(%q) = %v, want the split key found", body, hits)
			}
		}
	})
}

func hasSecret(hits []Hit, id string) bool {
	for _, h := range hits {
		if h.SecretID == id {
			return true
		}
	}
	return false
}

// FuzzBook puts and deletes secrets over a two-letter alphabet, so that
// their forms share prefixes of every length and end inside one another,
// and checks a scan against a plain substring search: a secret is found
// if and only if it is held and one of its forms occurs in the body.
func FuzzBook(f *testing.F) {
	f.Add([]byte("aaaaaaaabaaaaaaaaaaaaaaaaab"), []byte{0, 1, 2, 3, 130}, []byte("xaaaaaaaabaaaaaaaaaaaaaaaaabx"), uint8(5))
	f.Add([]byte("abababababababababab"), []byte{0, 128, 1}, []byte("abababababababababababab"), uint8(1))
	f.Fuzz(func(t *testing.T, pool, ops, body []byte, cut uint8) {
		ab := func(b []byte) string {
			out := make([]byte, len(b))
			for i, c := range b {
				out[i] = "ab"[c&1]
			}
			return string(out)
		}
		m := mustMatcher(t, nil, Options{})
		live := map[string]string{}
		for i, op := range ops {
			key := fmt.Sprint(op & 7)
			if op&128 != 0 {
				m.Delete(key)
				delete(live, key)
				continue
			}
			// The secret: 8 to 40 bytes of the pool, from an offset the op picks.
			if len(pool) < 8 {
				continue
			}
			from := (i * 7) % (len(pool) - 7)
			v := ab(pool[from:min(len(pool), from+8+int(op>>3&31))])
			if err := m.Put(key, Secret{ID: key, Class: ClassCanary, Value: []byte(v)}); err != nil {
				t.Fatal(err)
			}
			live[key] = v
		}
		text := "x" + ab(body) + "x"
		var want []string
		for k, v := range live {
			for _, f := range expand([]byte(v)) {
				if strings.Contains(text, string(f.b)) {
					want = append(want, k)
					break
				}
			}
		}
		slices.Sort(want)
		if got := foundIDs(m, text, 1+int(cut%16)); !slices.Equal(got, want) {
			t.Fatalf("Scan(%q) with %v = %v, want %v", text, live, got, want)
		}
	})
}
