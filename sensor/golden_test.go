package sensor

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/sensor")

// goldenDir holds one case per .txt file and its expected result in the
// sibling .golden file.
const goldenDir = "../testdata/sensor"

// goldenCase is a parsed case file: header lines, then "body:" and the body
// verbatim. In the body, {{enc:name}} is replaced by the encoder enc applied
// to name: a fixture secret ("openai"), a fake key we do not hold
// ("fmt:aws"), or {{enc:head}} / {{enc:tail}}, the two halves of the value
// named by the "vary" header, which the test splits at every byte.
type goldenCase struct {
	dir     Direction
	ctype   string
	secrets []Secret
	rules   bool
	vary    string
	body    string
}

var placeholderRE = regexp.MustCompile(`\{\{([a-zA-Z0-9]+):([a-z0-9:-]+)\}\}`)

func parseCase(text string) (goldenCase, error) {
	c := goldenCase{ctype: "application/json"}
	head, body, ok := strings.Cut(text, "body:\n")
	if !ok {
		return c, fmt.Errorf("no body: line")
	}
	c.body = body
	for _, line := range strings.Split(head, "\n") {
		k, v, _ := strings.Cut(line, ":")
		v = strings.TrimSpace(v)
		switch strings.TrimSpace(k) {
		case "direction":
			c.dir = map[string]Direction{"request": Request, "response": Response}[v]
		case "content-type":
			c.ctype = v
		case "rules":
			c.rules = v == "on"
		case "vary":
			c.vary = v
		case "secrets":
			for _, n := range strings.Fields(v) {
				s, ok := fixtureSecrets[n]
				if !ok {
					return c, fmt.Errorf("no fixture secret %q", n)
				}
				c.secrets = append(c.secrets, s)
			}
		}
	}
	return c, nil
}

// value resolves a placeholder name.
func (c goldenCase) value(name string, k int) (string, error) {
	if name == "head" || name == "tail" {
		v, err := c.value(c.vary, 0)
		if k <= 0 || k >= len(v) {
			k = len(v) / 2
		}
		if name == "head" {
			return v[:k], err
		}
		return v[k:], err
	}
	if f, ok := strings.CutPrefix(name, "fmt:"); ok {
		return fmtValue(f)
	}
	if n, ok := strings.CutPrefix(name, "neg:"); ok {
		return negValue(n)
	}
	s, ok := fixtureSecrets[name]
	if !ok {
		return "", fmt.Errorf("no fixture secret %q", name)
	}
	return string(s.Value), nil
}

// render expands the body, splitting the vary value at k (0: the middle).
func (c goldenCase) render(k int) (string, error) {
	var err error
	out := placeholderRE.ReplaceAllStringFunc(c.body, func(m string) string {
		p := placeholderRE.FindStringSubmatch(m)
		enc, ok := encoders[p[1]]
		if !ok {
			err = fmt.Errorf("no encoder %q", p[1])
			return ""
		}
		v, verr := c.value(p[2], k)
		if verr != nil {
			err = verr
		}
		return enc(v)
	})
	return out, err
}

func init() {
	encoders["jsonstr"] = func(v string) string {
		b, _ := json.Marshal(v)
		return string(b[1 : len(b)-1])
	}
}

func (c goldenCase) matcher(t *testing.T, redact bool) *Matcher {
	t.Helper()
	opts := Options{FormatRules: c.rules, FingerprintKey: []byte("golden")}
	if redact {
		opts.Redact = func(Hit) bool { return true }
	}
	m, err := NewMatcher(c.secrets, opts)
	if err != nil {
		t.Fatalf("NewMatcher: %v", err)
	}
	return m
}

// scanChunks scans body cut at the given offsets and returns the forwarded
// bytes and hits, checking on the way that no hit's run was forwarded
// before the hit was reported (split reassembly excepted, see the package
// comment).
func scanChunks(t *testing.T, m *Matcher, c goldenCase, body string, cuts []int) ([]byte, []Hit) {
	t.Helper()
	st := m.NewStream(c.dir, c.ctype)
	defer st.Release() // later scans reuse it: every test runs on reused streams too
	var out []byte
	var hits []Hit
	check := func(fwd []byte, hs []Hit) {
		for _, h := range hs {
			if int64(len(out)) > h.Offset && m.opts.Redact == nil && !strings.HasPrefix(h.Encoding, "sse-") {
				t.Errorf("cuts %v: hit %s at %d reported after %d bytes were forwarded", cuts, h.Encoding, h.Offset, len(out))
			}
		}
		out = append(out, fwd...)
		hits = append(hits, hs...)
	}
	prev := 0
	for _, k := range append(cuts, len(body)) {
		check(st.Write([]byte(body[prev:k])))
		prev = k
	}
	check(st.Close())
	return out, hits
}

func hitLines(hits []Hit, offsets bool) []string {
	var ls []string
	for _, h := range hits {
		id := h.SecretID
		if id == "" {
			id = "-"
		}
		l := fmt.Sprintf("%s %s %s %s %s fp=%s", h.Rule, h.Class, id, h.Encoding, h.Direction, h.Fingerprint)
		if offsets {
			l += fmt.Sprintf(" @%d", h.Offset)
		}
		ls = append(ls, l)
	}
	slices.Sort(ls)
	return ls
}

func formatGolden(hits []Hit, fwd []byte) string {
	ls := hitLines(hits, true)
	if len(ls) == 0 {
		ls = []string{"(none)"}
	}
	return "hits:\n" + strings.Join(ls, "\n") + "\nforward:\n" + string(fwd)
}

func TestGolden(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(goldenDir, "*.txt"))
	if len(files) == 0 {
		t.Fatal("no golden cases")
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".txt")
		t.Run(name, func(t *testing.T) { runGolden(t, f) })
	}
}

func runGolden(t *testing.T, file string) {
	text, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	c, err := parseCase(string(text))
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	body, err := c.render(0)
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	red, plain := c.matcher(t, true), c.matcher(t, false)
	fwd, hits := scanChunks(t, red, c, body, nil)
	got := formatGolden(hits, fwd)
	gf := strings.TrimSuffix(file, ".txt") + ".golden"
	if *update {
		if err := os.WriteFile(gf, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(gf)
	if err != nil {
		t.Fatalf("%v (run with -update)", err)
	}
	if got != string(want) {
		t.Fatalf("Scan(%s) =\n%s\nwant\n%s", file, got, want)
	}
	for _, s := range c.secrets {
		if bytes.Contains(fwd, s.Value) {
			t.Errorf("Scan(%s) forwarded secret %s raw", file, s.ID)
		}
	}
	wantLines := hitLines(hits, true)
	for k := 1; k < len(body); k++ {
		out, hs := scanChunks(t, red, c, body, []int{k})
		if g := hitLines(hs, true); !slices.Equal(g, wantLines) {
			t.Fatalf("Scan(%s split at %d) = %v, want %v", file, k, g, wantLines)
		}
		if c.ctype != "text/event-stream" && !bytes.Equal(out, fwd) {
			t.Fatalf("Scan(%s split at %d) forwarded %q, want %q", file, k, out, fwd)
		}
		scanChunks(t, plain, c, body, []int{k})
	}
	everyByte := make([]int, 0, len(body))
	for k := 1; k < len(body); k++ {
		everyByte = append(everyByte, k)
	}
	if _, hs := scanChunks(t, red, c, body, everyByte); !slices.Equal(hitLines(hs, true), wantLines) {
		t.Fatalf("Scan(%s byte by byte) = %v, want %v", file, hitLines(hs, true), wantLines)
	}
	if c.vary != "" {
		varyGolden(t, c, red, hitLines(hits, false))
	}
}

// hitKinds reduces hit lines to their distinct "rule class id" prefixes.
// Where a split falls changes how a format key is seen (a long enough
// first piece is key-shaped on its own), so vary cases compare kinds.
func hitKinds(lines []string) []string {
	var ks []string
	for _, l := range lines {
		f := strings.Fields(l)
		ks = append(ks, strings.Join(f[:3], " "))
	}
	slices.Sort(ks)
	return slices.Compact(ks)
}

// varyGolden re-renders the case with the vary value split at every byte
// and checks the same hits (offsets aside) come out, whole and byte by byte.
func varyGolden(t *testing.T, c goldenCase, m *Matcher, want []string) {
	v, err := c.value(c.vary, 0)
	if err != nil {
		t.Fatal(err)
	}
	want = hitKinds(want)
	for k := 1; k < len(v); k++ {
		body, _ := c.render(k)
		_, hs := scanChunks(t, m, c, body, nil)
		if g := hitKinds(hitLines(hs, false)); !slices.Equal(g, want) {
			t.Fatalf("Scan(vary %s at %d) = %v, want %v\nbody %q", c.vary, k, g, want, body)
		}
		cuts := []int{}
		for i := 1; i < len(body); i += 1 + k%5 {
			cuts = append(cuts, i)
		}
		if _, hs := scanChunks(t, m, c, body, cuts); !slices.Equal(hitKinds(hitLines(hs, false)), want) {
			t.Fatalf("Scan(vary %s at %d, chunked) = %v, want %v", c.vary, k, hitLines(hs, false), want)
		}
	}
}
