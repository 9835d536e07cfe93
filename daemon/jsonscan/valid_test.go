package jsonscan

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

var validCases = []string{
	``, ` `, `{}`, `[]`, `{"a":1}`, `{"a":1,}`, `[1,2,]`, `{"a" 1}`, `{"a":}`, `{,}`, `[,1]`, `{"a":1}}`, `{"a":1} x`,
	`"a"`, `"a`, `"\u00e9"`, `"\u00g9"`, `"\u00e"`, `"\x"`, `"\/\b\f\n\r\t\"\\"`, "\"a\x1fb\"", "\"a\x7fb\"", "\"\xff\xfe\"",
	`0`, `-0`, `01`, `-`, `1.`, `1.5`, `.5`, `1e`, `1e+`, `1e+5`, `1E-5`, `-12.5e10`, `1.5e`, `+1`,
	`true`, `tru`, `truex`, `false`, `null`, `nul`, `[true,false,null]`, ` {"a" : [ 1 , {"b":"c"} ] } `,
	"{\"a\":\"b\"}\n", "\t[]\r\n", `{"a":"` + strings.Repeat("x\\n\\\"", 50) + `"}`,
	`{"model":"gpt","messages":[{"role":"user","content":"` + strings.Repeat("func f() {\\n\\treturn \\\"x\\\"\\n}\\n", 40) + `"}]}`,
}

func TestValidAgreesWithEncodingJSON(t *testing.T) {
	for _, c := range validCases {
		if got, want := Valid([]byte(c)), json.Valid([]byte(c)); got != want {
			t.Errorf("Valid(%q) = %v, encoding/json says %v", c, got, want)
		}
	}
	deep := func(n int) []byte { return []byte(strings.Repeat("[", n) + strings.Repeat("]", n)) }
	for _, n := range []int{maxDepth, maxDepth + 1} {
		if got, want := Valid(deep(n)), json.Valid(deep(n)); got != want {
			t.Errorf("%d nested arrays: Valid %v, encoding/json %v", n, got, want)
		}
	}
}

// FuzzValid holds Valid to encoding/json.Valid on every input.
func FuzzValid(f *testing.F) {
	for _, c := range validCases {
		f.Add([]byte(c))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, want := Valid(b), json.Valid(b); got != want {
			t.Fatalf("Valid(%q) = %v, encoding/json says %v", b, got, want)
		}
		if i := SkipSpace(b, 0); Valid(b) && b[i] == '{' {
			// Members takes the members validate noted; EachMember walks
			// the valid object again: the two must agree.
			type kv struct{ k, v string }
			var got, want []kv
			if err := Members(b, func(k, v []byte) error { got = append(got, kv{string(k), string(v)}); return nil }); err != nil {
				t.Fatalf("Members(%q): %v", b, err)
			}
			EachMember(b[i:], func(k, v []byte) error { want = append(want, kv{string(k), string(v)}); return nil })
			if !slices.Equal(got, want) {
				t.Fatalf("Members(%q) = %q, EachMember %q", b, got, want)
			}
		}
		if i := SkipSpace(b, 0); Valid(b) && b[i] == '"' {
			if got, want := skipString(b, i), validString(b, i); got != want {
				t.Fatalf("skipString(%q) = %d, validString %d", b, got, want)
			}
		}
	})
}

func BenchmarkValid(b *testing.B) {
	doc := []byte(validCases[len(validCases)-1])
	for len(doc) < 1<<20 {
		doc = []byte(`{"model":"gpt","messages":[{"role":"user","content":"` + strings.Repeat("func f() {\\n\\treturn \\\"x\\\"\\n}\\n // some prose here, plain bytes ", 1<<20/60) + `"}]}`)
	}
	for _, v := range []struct {
		name string
		fn   func([]byte) bool
	}{{"jsonscan", Valid}, {"encoding-json", json.Valid}} {
		b.Run(v.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(doc)))
			for range b.N {
				if !v.fn(doc) {
					b.Fatal("invalid")
				}
			}
		})
	}
}

// TestSkipStringByWords: the word-at-a-time skip ends each string where
// validString does, with escapes at every offset of the 8-byte words.
func TestSkipStringByWords(t *testing.T) {
	for _, esc := range []string{`\"`, `\\`, `\n`, `\u00e9`, `\/`} {
		for pre := range 20 {
			for post := range 20 {
				doc := []byte(`"` + strings.Repeat("a", pre) + esc + strings.Repeat("b", post) + `" , "x"`)
				if got, want := skipString(doc, 0), validString(doc, 0); got != want || want < 0 {
					t.Fatalf("skipString(%q) = %d, validString %d", doc, got, want)
				}
			}
		}
	}
}
