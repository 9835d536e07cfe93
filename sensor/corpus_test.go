package sensor

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// The corpus test generates a labelled, seeded corpus of bodies carrying
// fake keys in every encoding and split, plus hard negatives, scans each in
// random chunks, and checks recall and false-positive rates against the
// bars the design sets.

// splitEncodings join the two halves of a value across a boundary.
var splitEncodings = []string{"sse-split", "json-array", "concat"}

// formatEncodings are the escapes and disguises the format rules see
// through; base64 and hex, in one layer or two, are tallied apart.
var formatEncodings = []string{"raw", "jsonu", "jsonmix", "pct", "pctmix", "fullwidth", "jsonfull", "zw", "zwmix", "jsonzw", "pctzw", "escaped"}

type sample struct {
	family, enc string
	ctype, body string
}

// jsonSafe escapes the quotes and line breaks of v for a JSON string;
// backslashes stay, as they are the escapes under test.
func jsonSafe(v string) string {
	return strings.NewReplacer(`"`, `\"`, "\n", `\n`, "\r", `\r`).Replace(v)
}

// render places value v, encoded with enc, into a body of a random kind.
func render(r *rand.Rand, family, enc, v string) sample {
	s := sample{family: family, enc: enc}
	k := 1 + r.IntN(len(v)-1)
	head, tail := jsonSafe(v[:k]), jsonSafe(v[k:])
	switch enc {
	case "sse-split":
		s.ctype = "text/event-stream"
		s.body = `data: {"choices":[{"index":0,"delta":{"content":"` + head + `"}}]}` + "\n\n" +
			`data: {"choices":[{"index":0,"delta":{"content":"` + tail + `"}}]}` + "\n\ndata: [DONE]\n\n"
		return s
	case "json-array":
		s.ctype, s.body = "application/json", `{"parts":["`+head+`", "`+tail+`"]}`
		return s
	case "concat":
		s.ctype, s.body = "text/plain", "key = \""+head+"\" + \""+tail+"\"\n"
		return s
	}
	e := jsonSafe(encoders[enc](v))
	switch r.IntN(4) {
	case 0:
		s.ctype, s.body = "application/json", `{"model":"gpt-4o","messages":[{"role":"user","content":"cfg: `+e+` ok"}]}`
	case 1:
		s.ctype, s.body = "application/json", `{"id":"msg_01","content":[{"type":"text","text":"`+e+`"}]}`
	case 2:
		s.ctype = "text/event-stream"
		s.body = `data: {"choices":[{"delta":{"content":"Sure: "}}]}` + "\n\n" +
			`data: {"choices":[{"delta":{"content":"` + e + `"}}]}` + "\n\n"
	default:
		s.ctype, s.body = "text/plain", "export KEY="+e+"\n"
	}
	return s
}

// scanRandom scans s in random chunks and returns the hits.
func scanRandom(r *rand.Rand, m *Matcher, s sample) []Hit {
	st := m.NewStream(Response, s.ctype)
	defer st.Release() // later scans reuse it: every test runs on reused streams too
	var hits []Hit
	for i := 0; i < len(s.body); {
		n := min(1+r.IntN(64), len(s.body)-i)
		_, h := st.Write([]byte(s.body[i : i+n]))
		hits = append(hits, h...)
		i += n
	}
	_, h := st.Close()
	return append(hits, h...)
}

// tally counts hits per row and column.
type tally map[[2]string][2]int

func (t tally) add(row, col string, ok bool) {
	c := t[[2]string{row, col}]
	c[1]++
	if ok {
		c[0]++
	}
	t[[2]string{row, col}] = c
}

// table renders rate (found/total) per row and column, plus totals.
func (t tally) table(title string) (string, float64) {
	var rows, cols []string
	found, total := 0, 0
	for k, c := range t {
		rows, cols = append(rows, k[0]), append(cols, k[1])
		found, total = found+c[0], total+c[1]
	}
	slices.Sort(rows)
	slices.Sort(cols)
	rows, cols = slices.Compact(rows), slices.Compact(cols)
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n%-16s", title, "")
	for _, c := range cols {
		fmt.Fprintf(&b, " %9.9s", c)
	}
	for _, r := range rows {
		fmt.Fprintf(&b, "\n%-16s", r)
		for _, c := range cols {
			if v, ok := t[[2]string{r, c}]; ok {
				fmt.Fprintf(&b, " %4d/%-4d", v[0], v[1])
			} else {
				fmt.Fprintf(&b, " %9s", "-")
			}
		}
	}
	fmt.Fprintf(&b, "\ntotal %d/%d = %.2f%%", found, total, 100*float64(found)/float64(total))
	return b.String(), float64(found) / float64(total)
}

func TestCorpus(t *testing.T) {
	r := rand.New(rand.NewPCG(2026, 11))
	allEncs := append(slices.Sorted(mapKeys(encoders)), splitEncodings...)
	allEncs = slices.DeleteFunc(allEncs, func(e string) bool { return e == "jsonstr" })
	n := 0

	// Known secrets: every family, every encoding, 100% recall.
	var held []Secret
	var heldSamples []sample
	for rep := range 3 {
		for _, f := range families {
			if f.name == "pem" {
				continue // held secrets are single-token credentials, never multi-line
			}
			v := f.gen(r)
			held = append(held, Secret{ID: fmt.Sprintf("%s-%d", f.name, rep), Class: ClassProviderKey, Value: []byte(v)})
			for _, e := range allEncs {
				heldSamples = append(heldSamples, render(r, f.name+"-"+fmt.Sprint(rep), e, v))
			}
		}
		tok := fakeJWT(r)
		held = append(held, Secret{ID: fmt.Sprintf("token-%d", rep), Class: ClassToken, Value: []byte(tok)})
		for _, e := range allEncs {
			heldSamples = append(heldSamples, render(r, "token-"+fmt.Sprint(rep), e, tok))
		}
	}
	m := mustMatcher(t, held, Options{FormatRules: true})
	exact := tally{}
	for _, s := range heldSamples {
		ok := false
		for _, h := range scanRandom(r, m, s) {
			ok = ok || h.SecretID == s.family
		}
		exact.add(strings.TrimRight(s.family, "-0123456789"), s.enc, ok)
	}
	n += len(heldSamples)
	tab, rate := exact.table("recall with known secrets (family x encoding)")
	t.Log(tab)
	if rate < 1 {
		t.Errorf("known-secret recall = %.4f, want 1", rate)
	}

	// Format rules alone.
	rules := mustMatcher(t, nil, Options{FormatRules: true})
	format, encoded := tally{}, tally{}
	for range 4 {
		for _, f := range families {
			v := f.gen(r)
			for _, e := range append(slices.Clone(formatEncodings), splitEncodings...) {
				s := render(r, f.name, e, v)
				format.add(f.name, e, hasRule(scanRandom(r, rules, s), f.rule))
				n++
			}
			for _, e := range []string{"base64", "base64at1", "base64at2", "base64url", "hex", "HEX", "b64b64", "b64hex"} {
				s := render(r, f.name, e, v)
				encoded.add(f.name, e, hasRule(scanRandom(r, rules, s), f.rule))
				n++
			}
		}
	}
	tab, rate = format.table("recall of format rules alone (family x encoding)")
	t.Log(tab)
	if rate < 0.98 {
		t.Errorf("format-rule recall = %.4f, want >= 0.98", rate)
	}
	tab, rate = encoded.table("recall of format rules on base64 and hex, one layer or two")
	t.Log(tab)
	if rate < 0.98 {
		t.Errorf("format-rule recall on base64/hex = %.4f, want >= 0.98", rate)
	}
	for _, e := range []string{"b64b64", "b64hex"} {
		for _, f := range families {
			if c := encoded[[2]string{f.name, e}]; c[0] < c[1] {
				t.Errorf("format rule %s on %s: %d of %d found, want all", f.rule, e, c[0], c[1])
			}
		}
	}

	n += negativeCorpus(t, r, m)
	if n < 3000 {
		t.Errorf("corpus has %d samples, want >= 3000", n)
	}
	t.Logf("corpus: %d samples", n)
}

func hasRule(hits []Hit, rule string) bool {
	for _, h := range hits {
		if h.Rule == rule {
			return true
		}
	}
	return false
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// strictNegatives must never fire: provider ids and benign streams.
var strictNegatives = []string{"chatcmpl", "msg", "toolu", "resp", "benign-sse", "benign-json"}

var proseWords = strings.Fields(`the model returned a stream of tokens and the task-runner asked for
risk-management notes; see https://example.com/v1/chat/completions?model=gpt-4o&stream=true
func main() { fmt.Println("hello") } SELECT * FROM users WHERE id = 42; sha256:9f86d081884c7d65
AKIA is the prefix of AWS key ids, sk- of OpenAI keys, ghp_ of GitHub tokens; never paste them.
base64 aGVsbG8gd29ybGQ= and hex deadbeefcafebabe, uuid 123e4567-e89b-12d3-a456-426614174000
100% of the time, 50%off, C:\\Users\\me, \u00e9t\u00e9, “quotes”, emoji 😀 done.`)

func benignText(r *rand.Rand, n int) string {
	var b strings.Builder
	for range n {
		b.WriteString(proseWords[r.IntN(len(proseWords))] + " ")
	}
	return b.String()
}

// negativeCorpus scans hard negatives and benign bodies with matcher m
// and checks the false-positive bars; it returns the number of samples.
func negativeCorpus(t *testing.T, r *rand.Rand, m *Matcher) int {
	fp := tally{}
	n := 0
	for range 60 {
		for _, ng := range negatives {
			fp.add(ng.name, "false-pos", len(scanRandom(r, m, render(r, ng.name, "raw", ng.gen(r)))) > 0)
		}
		var sse strings.Builder
		for range 20 {
			sse.WriteString(`data: {"id":"chatcmpl-` + randStr(r, alnum, 29) + `","choices":[{"index":0,"delta":{"content":"` +
				jsonSafe(benignText(r, 3)) + `"}}]}` + "\n\n")
		}
		s := sample{family: "benign-sse", ctype: "text/event-stream", body: sse.String() + "data: [DONE]\n\n"}
		fp.add("benign-sse", "false-pos", len(scanRandom(r, m, s)) > 0)
		s = sample{family: "benign-json", ctype: "application/json",
			body: `{"messages":[{"role":"user","content":"` + jsonSafe(benignText(r, 60)) + `"}]}`}
		fp.add("benign-json", "false-pos", len(scanRandom(r, m, s)) > 0)
		n += len(negatives) + 2
	}
	tab, rate := fp.table("false positives per negative class (hits/samples)")
	t.Log(tab)
	if rate > 0.005 {
		t.Errorf("false-positive rate = %.4f, want <= 0.005", rate)
	}
	for _, c := range strictNegatives {
		if v := fp[[2]string{c, "false-pos"}]; v[0] != 0 {
			t.Errorf("%s: %d false positives in %d, want 0", c, v[0], v[1])
		}
	}
	return n
}
