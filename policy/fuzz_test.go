package policy

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/tokfence/tokfence/policy/tomlfile"
)

// FuzzParse feeds Parse arbitrary bytes: a policy file may be written by an
// agent running as the user, so Parse must never panic, every error must be
// placed in the file, and no accepted policy may soften the floors.
func FuzzParse(f *testing.F) {
	seeds, _ := filepath.Glob(filepath.Join(testdata, "*.toml"))
	for _, name := range seeds {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(layered))
	f.Add([]byte("version = 1\nread_only = [\n\"GET */models\", # c\n]\n[[agent.'a.b'.rule]]\nmatch={rule=\"*\"}\nto=\"red\"\n"))
	f.Add([]byte("version = 1\n[rule.match]\nx = '''\n[[rule]]\n'''\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse(data, "fuzz.toml")
		if err != nil {
			if p != nil {
				t.Fatal("Parse returned a policy and an error")
			}
			lines := bytes.Count(data, []byte("\n")) + 1
			var es tomlfile.Errors
			if !errors.As(err, &es) || len(es) == 0 {
				t.Fatalf("Parse error %T %v, want a non-empty Errors", err, err)
			}
			for _, e := range es {
				if e.File != "fuzz.toml" || e.Line < 0 || e.Line > lines+1 {
					t.Fatalf("error %q placed at line %d of a %d-line file", e, e.Line, lines)
				}
			}
			return
		}
		for _, ev := range []Event{
			{SensorHit, "openai-key", ClassProviderKey, DirRequest},
			{SensorHit, "exact", ClassCapabilityToken, DirResponse},
			{Kind: Canary},
		} {
			if d := p.Decide("a", ev, 1); d.To != Red || !d.Block || !d.Redact {
				t.Fatalf("accepted policy softened %v to %+v", ev, d)
			}
		}
		p.Allows(Orange, "GET", "/v1/models")
		p.Decide("a", Event{SensorHit, "aws-access-key", ClassFormat, DirRequest}, 3)
		for s := Green; s <= Red; s++ {
			if s > Green && looser(p.RateLimit("a", s), p.RateLimit("a", s-1)) {
				t.Fatalf("accepted policy gives %v a looser limit than %v", s, s-1)
			}
		}
	})
}
