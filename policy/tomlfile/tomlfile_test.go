package tomlfile

import (
	"errors"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
)

func TestPath(t *testing.T) {
	p := Path("agent").Key("my agent").Key("rule").At(1).Key("match").Key("class")
	if want := `agent."my agent".rule[2].match.class`; string(p) != want {
		t.Fatalf("built path = %s, want %s", p, want)
	}
	var got []string
	for q := p; q != ""; q = q.Parent() {
		got = append(got, string(q))
	}
	want := []string{`agent."my agent".rule[2].match.class`, `agent."my agent".rule[2].match`, `agent."my agent".rule[2]`,
		`agent."my agent".rule`, `agent."my agent"`, `agent`}
	if strings.Join(got, " | ") != strings.Join(want, " | ") {
		t.Fatalf("parents = %q, want %q", got, want)
	}
	if got := Path("a.b]").Parent(); got != "a" {
		t.Fatalf(`Path("a.b]").Parent() = %q, want "a"`, got)
	}
}

const doc = `# a comment
socket = "/run/x.sock"

[limits.yellow]
per_minute = 30

[[rule]]
match = { kind = "canary" }
to = "RED"

[[rule]]
to = "YELLOW"
reason = """
[[not a table]]
"""
block = true

[fence]
hide = [
  "~/.ssh",   # keys
  "~/.aws",
]
"quoted.key" = 1
`

func TestIndexLines(t *testing.T) {
	ix := NewIndex([]byte(doc))
	tests := []struct {
		key  Path
		want int
	}{
		{"socket", 2},
		{"limits.yellow", 4},
		{"limits.yellow.per_minute", 5},
		{"rule[1]", 7},
		{"rule[1].match", 8},
		{"rule[1].match.kind", 8}, // inline: the line of its table
		{"rule[2].to", 12},
		{"rule[2].block", 16}, // after a multi-line string that looks like a table
		{"fence.hide[2]", 21},
		{`fence."quoted.key"`, 23},
		{"nosuch", 0},
	}
	for _, tt := range tests {
		if got := ix.Line(tt.key); got != tt.want {
			t.Errorf("Line(%s) = %d, want %d", tt.key, got, tt.want)
		}
	}
}

func TestKeyLineOfUndecodedKeys(t *testing.T) {
	var v struct {
		Socket string `toml:"socket"`
		Fence  struct {
			Hide []string `toml:"hide"`
		} `toml:"fence"`
	}
	md, err := toml.Decode(doc, &v)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"limits.yellow": 4, "limits.yellow.per_minute": 5, "rule": 7, "fence.\"quoted.key\"": 23}
	for _, k := range md.Undecoded() {
		if w, ok := want[k.String()]; ok {
			if got := KeyLine([]byte(doc), k); got != w {
				t.Errorf("KeyLine(%s) = %d, want %d", k, got, w)
			}
			delete(want, k.String())
		}
	}
	for k := range want {
		t.Errorf("Undecoded did not report %s", k)
	}
}

func TestDecodeError(t *testing.T) {
	tests := []struct {
		name, doc string
		want      string
	}{
		{"a syntax error names the line", "a = 1\n\n[b\n", "c.toml:3: "},
		{"a syntax error reads like ours", "a = 1\nb = = 2\n", "c.toml:2: expected value but found '=' instead"},
		{"a type mismatch names line and key", "n = \"x\"\n", "c.toml:1: n: incompatible types"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var v struct {
				N int `toml:"n"`
			}
			_, err := toml.Decode(tt.doc, &v)
			if err == nil {
				t.Fatalf("decoding %q succeeded", tt.doc)
			}
			err = DecodeError("c.toml", []byte(tt.doc), err)
			var e *Error
			if !errors.As(err, &e) || e.File != "c.toml" || !strings.HasPrefix(err.Error(), tt.want) {
				t.Fatalf("DecodeError = %v, want an *Error starting %q", err, tt.want)
			}
		})
	}
	if err := DecodeError("c.toml", nil, errors.New("toml: something else")); err.Error() != "c.toml: something else" {
		t.Fatalf("DecodeError(other) = %q, want %q", err, "c.toml: something else")
	}
}

func TestErrorsJoinAndUnwrap(t *testing.T) {
	es := Errors{{File: "p.toml", Line: 3, Key: "rule[1].to", Msg: "bad"}, {File: "p.toml", Msg: "worse"}}
	if got, want := es.Error(), "p.toml:3: rule[1].to: bad\np.toml: worse"; got != want {
		t.Fatalf("Errors.Error() = %q, want %q", got, want)
	}
	var e *Error
	if !errors.As(error(es), &e) || e.Msg != "bad" {
		t.Fatalf("errors.As found %v, want the first *Error", e)
	}
}

// FuzzIndex feeds the scanner any bytes: TOML the decoder accepts or not,
// and any key. It must not panic, and every line it reports must be one of
// the document's.
func FuzzIndex(f *testing.F) {
	for _, s := range []string{doc, "\"", "[\"", "[[\"a\"]]\n\"", "a = [\n\"\\", "a.\"b\" = '''\n", "[a.b]]]\nc = 1\n", "x = [[1, {a = \"]\"}],\n 2]\n"} {
		f.Add([]byte(s), "rule.match.kind")
	}
	f.Fuzz(func(t *testing.T, data []byte, key string) {
		lines := strings.Count(string(data), "\n") + 1
		ix := NewIndex(data)
		k := toml.Key(strings.Split(key, "."))
		for _, p := range []Path{ix.Locate(k), Path(key), Path(key).At(0)} {
			if l := ix.Line(p); l < 0 || l > lines {
				t.Fatalf("Line(%q) = %d in a %d-line document", p, l, lines)
			}
		}
		var v map[string]any
		if _, err := toml.Decode(string(data), &v); err != nil {
			var e *Error
			if err := DecodeError("f.toml", data, err); !errors.As(err, &e) || e.Line < 0 || e.Line > lines+1 {
				t.Fatalf("DecodeError = %v, want an *Error within the document", err)
			}
		}
	})
}
