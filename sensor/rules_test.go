package sensor

import (
	"encoding/base64"
	"encoding/hex"
	"math/rand/v2"
	"strings"
	"testing"
)

// TestOpenAIProjectKeyBodies checks that project keys are found whatever
// their body starts with: their 156 characters are drawn from the
// base64url alphabet, '_' and '-' included, and one in a hundred has few
// enough distinct characters that a bar of a third of the tail refused it.
func TestOpenAIProjectKeyBodies(t *testing.T) {
	m := mustMatcher(t, nil, Options{FormatRules: true})
	r := rand.New(rand.NewPCG(31, 32))
	for _, lead := range []string{"", "_", "-", "_-", "-_", "__", "--"} {
		missed := 0
		for range 300 {
			key := "sk-proj-" + lead + randStr(r, keyChar, 156-len(lead))
			if _, hits := scan(m, "text/plain", "key: "+key+"\n", 64); !hasRule(hits, "openai-key") {
				missed++
			}
		}
		if missed > 0 {
			t.Errorf("project keys with body %q...: %d of 300 missed, want 0", lead, missed)
		}
	}
}

func TestPlausible(t *testing.T) {
	openai := &formatRules[0]
	tests := []struct {
		name, tail string
		want       bool
	}{
		{"random project key", "proj-" + randStr(rand.New(rand.NewPCG(1, 1)), keyChar, 156), true},
		{"one repeated letter", "proj-" + strings.Repeat("X", 40), false},
		{"two letters alternating", "proj-" + strings.Repeat("aB3", 30), false},
		{"a placeholder word", "proj-" + "Ab1" + strings.Repeat("yourKey9", 5), false},
		{"a long tail of 19 distinct characters", "Ab1" + strings.Repeat("cdefghijklmnopqr", 10), false},
		{"a long tail of 20 distinct characters", "Ab1" + strings.Repeat("cdefghijklmnopqrs", 10), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := openai.plausible([]byte(tt.tail)); got != tt.want {
				t.Errorf("plausible(%q) = %v, want %v", tt.tail, got, tt.want)
			}
		})
	}
}

func TestPEMState(t *testing.T) {
	body := strings.Repeat("MIIEvQIBADANBgkqhkiG9w0BAQEFAASC", 2)
	tests := []struct {
		name, tail string
		want       verdict
	}{
		{"rsa key", "RSA PRIVATE KEY-----\n" + body, accept},
		{"pkcs8 key, CRLF", "PRIVATE KEY-----\r\n" + body, accept},
		{"openssh key", "OPENSSH PRIVATE KEY-----\n" + body, accept},
		{"header only", "RSA PRIVATE KEY-----\n", reject},
		{"short body then END", "PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----", reject},
		{"header then another header", "RSA PRIVATE KEY-----\n-----BEGIN ", reject},
		{"certificate", "CERTIFICATE-----\n" + body, reject},
		{"dash before the marker", "-----BEGIN RSA PRIVATE KEY-----\n" + body, reject},
		{"header too long", strings.Repeat("A", pemHeaderMax) + " PRIVATE KEY-----\n" + body, reject},
		{"lower-case header", "rsa PRIVATE KEY-----\n" + body, reject},
		{"placeholder body", "PRIVATE KEY-----\n...\n-----END PRIVATE KEY-----", reject},
		{"marker after a false start", "PRIVATE KEY----PRIVATE KEY-----\n" + body, accept},
		{"blank lines past the bound", "PRIVATE KEY-----" + strings.Repeat("\n", pemMaxTail), reject},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := pemStep([]byte(tt.tail), true); got != tt.want {
				t.Errorf("pemStep(%q) = %v, want %v", tt.tail, got, tt.want)
			}
		})
	}
}

// twoLayer renders key as an agent might hide it twice: inside a blob
// (after a random-length "name=" lead and before a random trailer) encoded
// with inner, that text inside a second blob at a random offset encoded
// with outer. Every alignment of both layers comes up.
func twoLayer(r *rand.Rand, key string, inner func([]byte) string, outer *base64.Encoding) string {
	blob := randStr(r, alnum, r.IntN(5)) + "=" + key + []string{"", "\n", " ok", "\"}"}[r.IntN(4)]
	text := string(randBytes(r, "", r.IntN(6))) + inner([]byte(blob)) + []string{"", "\n", "=="}[r.IntN(3)]
	return outer.EncodeToString([]byte(text))
}

// TestFormatRulesTwoLayers checks that the format rules see through
// base64 and base64url of base64 and of hex, at every alignment, as the
// exact matcher does: these were found 0 times in 200 (gitleaks' default
// decoder finds both).
func TestFormatRulesTwoLayers(t *testing.T) {
	m := mustMatcher(t, nil, Options{FormatRules: true})
	r := rand.New(rand.NewPCG(41, 42))
	inners := map[string]func([]byte) string{"base64": base64.StdEncoding.EncodeToString, "hex": hex.EncodeToString,
		"HEX": func(b []byte) string { return strings.ToUpper(hex.EncodeToString(b)) }}
	outers := map[string]*base64.Encoding{"base64": base64.StdEncoding, "base64url": base64.URLEncoding, "rawurl": base64.RawURLEncoding}
	for _, f := range families {
		n := 12
		if f.name == "aws" || f.name == "github" {
			n = 200
		}
		for in, enc := range inners {
			for out, oenc := range outers {
				missed := 0
				for range n {
					key := f.gen(r)
					if _, hits := scan(m, "text/plain", key, 1000); !hasRule(hits, f.rule) {
						continue // a random key that spells a placeholder ("yOuR"): missed raw too
					}
					body := `{"content":"cfg ` + twoLayer(r, key, enc, oenc) + ` end"}`
					if _, hits := scan(m, "application/json", body, 1+r.IntN(90)); !hasRule(hits, f.rule) {
						missed++
					}
				}
				if missed > 0 {
					t.Errorf("%s in %s(%s): %d of %d missed, want 0", f.name, out, in, missed, n)
				}
			}
		}
	}
}
