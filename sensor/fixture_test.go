package sensor

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"strings"
)

// Test secrets are generated from fixed seeds at run time rather than
// written into the repository: they are realistically shaped but fake, and
// keeping them out of the files keeps secret scanners (ours included) quiet.

const (
	alnum   = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	keyChar = alnum + "-_"
	upper32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
	letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	b64std  = alnum + "+/"
)

func randStr(r *rand.Rand, set string, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = set[r.IntN(len(set))]
	}
	return string(b)
}

// families are the key formats, each a generator of a fresh fake key.
var families = []struct {
	name string
	rule string // the format rule that must find it
	gen  func(r *rand.Rand) string
}{
	{"openai-proj", "openai-key", func(r *rand.Rand) string { return "sk-proj-" + randStr(r, keyChar, 156) }},
	{"openai-legacy", "openai-key", func(r *rand.Rand) string { return "sk-" + randStr(r, alnum, 48) }},
	{"openai-svcacct", "openai-key", func(r *rand.Rand) string { return "sk-svcacct-" + randStr(r, keyChar, 120) }},
	{"anthropic", "anthropic-key", func(r *rand.Rand) string { return "sk-ant-api03-" + randStr(r, keyChar, 93) + "AA" }},
	{"anthropic-admin", "anthropic-key", func(r *rand.Rand) string { return "sk-ant-admin01-" + randStr(r, keyChar, 93) + "AA" }},
	{"aws", "aws-access-key", func(r *rand.Rand) string { return "AKIA" + randStr(r, upper32, 16) }},
	{"aws-sts", "aws-access-key", func(r *rand.Rand) string { return "ASIA" + randStr(r, upper32, 16) }},
	{"github", "github-pat", func(r *rand.Rand) string { return "ghp_" + randStr(r, alnum, 36) }},
	{"github-oauth", "github-pat", func(r *rand.Rand) string { return "gho_" + randStr(r, alnum, 36) }},
	{"github-fine", "github-pat", func(r *rand.Rand) string {
		return "github_pat_" + randStr(r, alnum, 22) + "_" + randStr(r, alnum, 59)
	}},
	{"google", "google-api-key", func(r *rand.Rand) string { return "AIza" + randStr(r, keyChar, 35) }},
	{"slack", "slack-token", func(r *rand.Rand) string {
		return "xoxb-" + randStr(r, "0123456789", 12) + "-" + randStr(r, "0123456789", 13) + "-" + randStr(r, alnum, 24)
	}},
	{"stripe", "stripe-key", func(r *rand.Rand) string { return "sk_live_" + randStr(r, alnum, 99) }},
	{"groq", "groq-key", func(r *rand.Rand) string { return "gsk_" + randStr(r, alnum, 52) }},
	{"xai", "xai-key", func(r *rand.Rand) string { return "xai-" + randStr(r, alnum, 80) }},
	{"huggingface", "huggingface-token", func(r *rand.Rand) string { return "hf_" + randStr(r, letters, 34) }},
	{"pem", "pem-private-key", func(r *rand.Rand) string {
		var b strings.Builder
		b.WriteString("-----BEGIN RSA PRIVATE KEY-----\n")
		for range 4 {
			b.WriteString(randStr(r, b64std, 64) + "\n")
		}
		b.WriteString("-----END RSA PRIVATE KEY-----")
		return b.String()
	}},
}

func family(name string) (int, bool) {
	for i, f := range families {
		if f.name == name {
			return i, true
		}
	}
	return 0, false
}

// fakeJWT returns a token shaped like the daemon's capability tokens.
func fakeJWT(r *rand.Rand) string {
	enc := base64.RawURLEncoding
	claims := fmt.Sprintf(`{"iss":"tokfence","sid":"%s","jti":"%s","exp":%d}`,
		randStr(r, alnum, 22), randStr(r, alnum, 16), 1900000000+r.IntN(1e6))
	sig := make([]byte, 64)
	for i := range sig {
		sig[i] = byte(r.UintN(256))
	}
	return enc.EncodeToString([]byte(`{"alg":"EdDSA","typ":"JWT"}`)) + "." +
		enc.EncodeToString([]byte(claims)) + "." + enc.EncodeToString(sig)
}

// fixtureSecrets are the held secrets golden cases can name.
var fixtureSecrets = func() map[string]Secret {
	r := rand.New(rand.NewPCG(1, 2))
	gen := func(f string) []byte { i, _ := family(f); return []byte(families[i].gen(r)) }
	return map[string]Secret{
		"openai":    {ID: "openai", Class: ClassProviderKey, Value: gen("openai-proj")},
		"anthropic": {ID: "anthropic", Class: ClassProviderKey, Value: gen("anthropic")},
		"google":    {ID: "google", Class: ClassProviderKey, Value: gen("google")},
		"token":     {ID: "jti-7f3a", Class: ClassToken, Value: []byte(fakeJWT(r))},
		"canary":    {ID: "sess-42", Class: ClassCanary, Value: []byte("AKIA" + randStr(r, upper32, 16))},
	}
}()

// projectKeySeeds generate OpenAI project keys whose 161-character tail
// has 53 distinct characters: real keys that the old plausibility bar (a
// third of the tail) refused, about one in a hundred.
var projectKeySeeds = [2]uint64{227, 1155}

// extraFormats are fake keys golden cases name beside the families.
var extraFormats = map[string]func() string{
	// Project keys whose body starts with '_' or '-'.
	"openai-proj-underscore": func() string {
		return "sk-proj-_-" + randStr(rand.New(rand.NewPCG(projectKeySeeds[0], 20)), keyChar, 154)
	},
	"openai-proj-dash": func() string {
		return "sk-proj--_" + randStr(rand.New(rand.NewPCG(projectKeySeeds[1], 20)), keyChar, 154)
	},
}

// fmtValue returns the fake key of family fam used by golden cases; it is
// not one of the held secrets.
func fmtValue(fam string) (string, error) {
	if f, ok := extraFormats[fam]; ok {
		return f(), nil
	}
	i, ok := family(fam)
	if !ok {
		return "", fmt.Errorf("no key family %q", fam)
	}
	return families[i].gen(rand.New(rand.NewPCG(uint64(i), 99))), nil
}

// encoders render a value the way an agent might smuggle it.
var encoders = map[string]func(v string) string{
	"raw":       func(v string) string { return v },
	"base64":    func(v string) string { return base64.StdEncoding.EncodeToString([]byte(v)) },
	"base64at1": func(v string) string { return base64.StdEncoding.EncodeToString([]byte("k=" + v)) },
	"base64at2": func(v string) string { return base64.StdEncoding.EncodeToString([]byte("key=" + v + "\n")) },
	"base64url": func(v string) string { return base64.RawURLEncoding.EncodeToString([]byte("\xfb\xff" + v)) },
	"hex":       func(v string) string { return hex.EncodeToString([]byte(v)) },
	"HEX":       func(v string) string { return strings.ToUpper(hex.EncodeToString([]byte(v))) },
	"jsonu": func(v string) string {
		return escapeEvery(v, 1, func(c byte) string { return fmt.Sprintf(`\u%04x`, c) })
	},
	"jsonmix": func(v string) string {
		return escapeEvery(v, 3, func(c byte) string { return fmt.Sprintf(`\u%04X`, c) })
	},
	"pct": func(v string) string {
		return escapeEvery(v, 1, func(c byte) string { return fmt.Sprintf("%%%02X", c) })
	},
	"pctmix": func(v string) string {
		return escapeEvery(v, 4, func(c byte) string { return fmt.Sprintf("%%%02x", c) })
	},
	"fullwidth": func(v string) string { return mapRunes(v, func(c byte) string { return string(rune(c) + 0xFEE0) }) },
	"jsonfull": func(v string) string {
		return mapRunes(v, func(c byte) string { return fmt.Sprintf(`\u%04x`, rune(c)+0xFEE0) })
	},
	"zw": func(v string) string { return interleave(v, []string{"\u200b"}) },
	"zwmix": func(v string) string {
		return interleave(v, []string{"\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad", ""})
	},
	"jsonzw":  func(v string) string { return interleave(v, []string{`\u200b`, `\u00ad`, `\ufeff`}) },
	"pctzw":   func(v string) string { return interleave(v, []string{"%E2%80%8B"}) },
	"b64b64":  func(v string) string { return b64(b64(v)) },
	"b64hex":  func(v string) string { return b64(hex.EncodeToString([]byte(v))) },
	"escaped": func(v string) string { return strings.ReplaceAll(v, "/", `\/`) },
}

func b64(v string) string { return base64.StdEncoding.EncodeToString([]byte(v)) }

// escapeEvery escapes every k-th byte of v with esc.
func escapeEvery(v string, k int, esc func(byte) string) string {
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		if i%k == 0 {
			b.WriteString(esc(v[i]))
		} else {
			b.WriteByte(v[i])
		}
	}
	return b.String()
}

// mapRunes maps the printable ASCII of v with f; line breaks stay.
func mapRunes(v string, f func(byte) string) string {
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		if v[i] > ' ' && v[i] < 0x7f {
			b.WriteString(f(v[i]))
		} else {
			b.WriteByte(v[i])
		}
	}
	return b.String()
}

// interleave puts the separators, in turn, between the bytes of v.
func interleave(v string, seps []string) string {
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		if i > 0 {
			b.WriteString(seps[i%len(seps)])
		}
		b.WriteByte(v[i])
	}
	return b.String()
}

// negatives are hard negatives: strings that look like secrets to a naive
// scanner but must not fire.
var negatives = []struct {
	name string
	gen  func(r *rand.Rand) string
}{
	{"uuid", func(r *rand.Rand) string {
		h := randStr(r, "0123456789abcdef", 32)
		return h[:8] + "-" + h[8:12] + "-4" + h[13:16] + "-a" + h[17:20] + "-" + h[20:]
	}},
	{"sha1", func(r *rand.Rand) string { return randStr(r, "0123456789abcdef", 40) }},
	{"sha256", func(r *rand.Rand) string { return randStr(r, "0123456789abcdef", 64) }},
	{"png", func(r *rand.Rand) string {
		return "data:image/png;base64," + b64(string(randBytes(r, "\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", 900)))
	}},
	{"jpeg", func(r *rand.Rand) string { return b64(string(randBytes(r, "\xff\xd8\xff\xe0\x00\x10JFIF\x00", 900))) }},
	{"jwt", func(r *rand.Rand) string { return fakeJWT(r) }},
	{"chatcmpl", func(r *rand.Rand) string { return "chatcmpl-" + randStr(r, alnum, 29) }},
	{"msg", func(r *rand.Rand) string { return "msg_01" + randStr(r, alnum, 22) }},
	{"toolu", func(r *rand.Rand) string { return "toolu_01" + randStr(r, alnum, 22) }},
	{"resp", func(r *rand.Rand) string { return "resp_" + randStr(r, "0123456789abcdef", 48) }},
	{"placeholder", func(r *rand.Rand) string {
		ps := []string{"sk-...", "sk-" + strings.Repeat("x", 48), "sk-your-key-here", "YOUR_API_KEY",
			"<OPENAI_API_KEY>", "sk-proj-" + strings.Repeat("X", 40), "AKIAIOSFODNN7EXAMPLE",
			"ghp_" + strings.Repeat("x", 36), "sk-ant-api03-...", "sk-ant-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
			"sk-your-openai-api-key-goes-here-please-replace-it", "AIzaSyYOUR_GOOGLE_API_KEY_HERE_XXXXXXXX",
			"xoxb-your-slack-bot-token", "sk_live_" + strings.Repeat("0", 24), "-----BEGIN PRIVATE KEY-----\n...\n-----END PRIVATE KEY-----"}
		return ps[r.IntN(len(ps))]
	}},
	{"base64-prose", func(r *rand.Rand) string {
		ids := []string{"ask-Claude-3-5-Sonnet-20241022-for-help-with-PR-1234", "task-Runner-v2-Build-9f8e7d6c5b4a-Release-Candidate",
			"AKIAHOWTOUSEAWSKEYS", "flask-App-Config-Loader-2024-06-Version-7-Beta-Alpha"}
		return b64(strings.Repeat("x", r.IntN(3)) + "notes: " + ids[r.IntN(len(ids))] + " and more text\n")
	}},
	{"prose", func(r *rand.Rand) string {
		ws := []string{"the", "task-runner", "risk-management", "disk-usage", "ask-me", "AKIA", "sk-", "hf_", "xai-", "ghp_", "gsk_",
			"tokens", "stream", "model", "AIza", "key", "secret", "-----BEGIN", "PRIVATE", "KEY-----", "data:", "\n"}
		var b strings.Builder
		for range 80 {
			b.WriteString(ws[r.IntN(len(ws))] + " ")
		}
		return b.String()
	}},
}

func randBytes(r *rand.Rand, header string, n int) []byte {
	b := []byte(header)
	for len(b) < n {
		b = append(b, byte(r.UintN(256)))
	}
	return b
}

// negValue returns the hard negative of kind name used by golden cases.
func negValue(name string) (string, error) {
	for i, n := range negatives {
		if n.name == name {
			return n.gen(rand.New(rand.NewPCG(uint64(i), 7))), nil
		}
	}
	return "", fmt.Errorf("no negative %q", name)
}
