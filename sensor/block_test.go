package sensor

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// writes scans body in chunks of the given sizes and returns what each
// Write and the Close returned, rendered for comparison.
func writes(m *Matcher, ctype string, body []byte, sizes []int) []string {
	st := m.NewStream(Response, ctype)
	defer st.Release() // later scans reuse it: every test runs on reused streams too
	var calls []string
	for i, k := 0, 0; i < len(body); k++ {
		n := min(sizes[k%len(sizes)], len(body)-i)
		f, h := st.Write(body[i : i+n])
		calls = append(calls, fmt.Sprintf("%q %v", f, h))
		i += n
	}
	f, h := st.Close()
	return append(calls, fmt.Sprintf("%q %v", f, h))
}

// blockBodies returns bodies that exercise the block scan's edges: every
// family and encoding in the corpus's renderings, hard negatives, and
// secrets and keywords dropped into chat JSON and prose at random points.
func blockBodies(r *rand.Rand, held []Secret) []sample {
	var ss []sample
	encs := append(slices.Sorted(mapKeys(encoders)), splitEncodings...)
	for _, f := range families {
		v := f.gen(r)
		for _, e := range encs {
			ss = append(ss, render(r, f.name, e, v))
		}
	}
	for _, ng := range negatives {
		ss = append(ss, render(r, ng.name, "raw", ng.gen(r)))
	}
	chat := string(chatBody(4 << 10))
	for range 40 {
		v := string(held[r.IntN(len(held))].Value)
		enc := encs[r.IntN(len(encs))]
		if fn, ok := encoders[enc]; ok {
			v = jsonSafe(fn(v))
		}
		cut := r.IntN(len(chat))
		ss = append(ss, sample{family: "chat", ctype: "application/json", body: chat[:cut] + v + chat[cut:]})
		words := strings.Fields(benignText(r, 30))
		k := r.IntN(len(words))
		body := strings.Join(words[:k], " ") + ` "` + v[:len(v)/2] + `" + "` + v[len(v)/2:] + `" ` + strings.Join(words[k:], " ")
		ss = append(ss, sample{family: "concat", ctype: "text/plain", body: body})
	}
	return ss
}

// TestBlockScanMatchesByteScan checks the main lane's block fast path
// against the byte-at-a-time path: for every body and cutting, each Write
// and the Close must return the same bytes and hits either way, so the
// fast path changes neither what is found nor what is held.
func TestBlockScanMatchesByteScan(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	held := benchSecrets(20)
	for i := range fixtureSecrets {
		held = append(held, fixtureSecrets[i])
	}
	matchers := map[string]*Matcher{
		"held+rules": mustMatcher(t, held, Options{FormatRules: true, Redact: func(Hit) bool { return true }}),
		"held":       mustMatcher(t, held, Options{Redact: func(Hit) bool { return true }}),
		"rules":      mustMatcher(t, nil, Options{FormatRules: true, Redact: func(Hit) bool { return true }}),
	}
	defer func() { noBlock = false }()
	for name, m := range matchers {
		for _, s := range blockBodies(r, held) {
			sizes := []int{len(s.body)}
			if r.IntN(2) == 0 {
				sizes = []int{1 + r.IntN(7), 1 + r.IntN(64), 1 + r.IntN(300)}
			}
			noBlock = false
			got := writes(m, s.ctype, []byte(s.body), sizes)
			noBlock = true
			want := writes(m, s.ctype, []byte(s.body), sizes)
			if !slices.Equal(got, want) {
				t.Errorf("%s: Scan(%s %s, chunks %v) with blocks = %v, want %v", name, s.family, s.enc, sizes, got, want)
			}
		}
	}
}
