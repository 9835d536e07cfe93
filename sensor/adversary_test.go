package sensor

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"math/rand/v2"
	"testing"
)

// Adversarial inputs: bodies an agent can send at will to make the
// sensors slow. Each is built to keep candidates, partial matches or
// decoders busy: keywords with no valid tail, headers with no body, long
// runs that could still turn out to be encoded keys, and prefixes of the
// held secrets.

// adversaryMatcher holds the fixture secrets and ten more, with the
// format rules, as the daemon does.
func adversaryMatcher(t testing.TB) *Matcher {
	ss := benchSecrets(10)
	for _, n := range []string{"openai", "anthropic", "token", "canary"} {
		ss = append(ss, fixtureSecrets[n])
	}
	return mustMatcher(t, ss, Options{FormatRules: true, Redact: func(Hit) bool { return true }})
}

// adversarial returns the named adversarial bodies, each about size bytes.
func adversarial(size int) []struct {
	name string
	body []byte
} {
	r := rand.New(rand.NewPCG(13, 14))
	rep := func(s string) []byte { return bytes.Repeat([]byte(s), size/len(s)+1)[:size] }
	randRun := func(set string) []byte { return []byte(randStr(r, set, size)) }
	key := string(fixtureSecrets["anthropic"].Value)
	return []struct {
		name string
		body []byte
	}{
		{"pem-headers", rep("-----BEGIN RSA PRIVATE KEY-----\n")},
		{"pem-begin", rep("-----BEGIN ")},
		{"pem-no-body", rep("-----BEGIN PRIVATE KEY-----\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n")},
		{"sk-", rep("sk-")},
		{"sk-proj-", rep("sk-proj-")},
		{"sk-long-tail", rep("sk-" + randStr(r, keyChar, 199) + " ")},
		{"AKIA", rep("AKIA")},
		{"AKIA-short", rep("AKIA" + randStr(r, upper32, 15) + " ")},
		{"ghp_", rep("ghp_")},
		{"base64-run", randRun(b64std)},
		{"hex-run", randRun("0123456789abcdef")},
		{"base64-of-AKIA", []byte(base64.StdEncoding.EncodeToString(rep("AKIA"))[:size])},
		{"base64-of-PEM", []byte(base64.StdEncoding.EncodeToString(rep("-----BEGIN "))[:size])},
		{"hex-of-sk-", []byte(hex.EncodeToString(rep("sk-"))[:size])},
		{"b64b64-of-sk-", []byte(b64(b64(string(rep("sk-"))))[:size])},
		{"held-prefix", rep(key[:40] + " ")},
		{"held-key", rep(key + " ")},
		{"json-escapes", rep(`\u0041\u200b`)},
		{"concat-gaps", rep(`"sk-ab" + "`)},
	}
}

// BenchmarkAdversarial scans 1 MiB of each adversarial input; the figures
// are comparable with BenchmarkScanAll's ordinary chat JSON.
func BenchmarkAdversarial(b *testing.B) {
	m := adversaryMatcher(b)
	for _, in := range adversarial(1 << 20) {
		b.Run(in.name, func(b *testing.B) {
			benchScan(b, m, "text/plain", in.body)
		})
	}
}

// TestAdversarialInputsScan checks that every adversarial input scans
// and that a real key after it is still found: the inputs slow nothing
// down to the point of missing what follows.
func TestAdversarialInputsScan(t *testing.T) {
	m := adversaryMatcher(t)
	key := fixtureSecrets["openai"].Value
	for _, in := range adversarial(64 << 10) {
		t.Run(in.name, func(t *testing.T) {
			body := string(in.body) + "\n" + string(key) + "\n"
			_, hits := scan(m, "text/plain", body, benchChunk)
			found := false
			for _, h := range hits {
				found = found || h.SecretID == "openai"
			}
			if !found {
				t.Errorf("Scan(%s + key) misses the key", in.name)
			}
		})
	}
}

// scanSteps scans body in proxy-sized chunks and returns the stream's
// work in steps.
func scanSteps(m *Matcher, body []byte) int64 {
	st := m.NewStream(Request, "text/plain")
	defer st.Release()
	for i := 0; i < len(body); i += benchChunk {
		st.Write(body[i:min(i+benchChunk, len(body))])
	}
	st.Close()
	return st.steps()
}

// maxStepsPerByte bounds the work per input byte on any input: a lane
// step per byte and lane (three lanes), a candidate decision or a copy now
// and then. Quadratic paths (a tail copied and searched again on every
// byte) cost hundreds of steps per byte.
const maxStepsPerByte = 8

// TestAdversarialLinear checks that the sensors' work grows linearly
// with the input, with a small constant, on every adversarial input: 1 MiB
// costs at most 16 times (plus 5%) what 64 KiB does, and no input costs
// more than maxStepsPerByte steps per byte. It counts steps, not time.
func TestAdversarialLinear(t *testing.T) {
	m := adversaryMatcher(t)
	small, large := adversarial(64<<10), adversarial(1<<20)
	for i := range small {
		t.Run(small[i].name, func(t *testing.T) {
			s, l := scanSteps(m, small[i].body), scanSteps(m, large[i].body)
			per := float64(l) / float64(len(large[i].body))
			t.Logf("64 KiB: %d steps, 1 MiB: %d steps (%.2f per byte, ratio %.2f)", s, l, per, float64(l)/float64(s))
			if float64(l) > 16.8*float64(s) {
				t.Errorf("steps(1 MiB) = %d, steps(64 KiB) = %d: ratio %.2f, want at most 16.8", l, s, float64(l)/float64(s))
			}
			if per > maxStepsPerByte {
				t.Errorf("steps per byte = %.2f, want at most %d", per, maxStepsPerByte)
			}
		})
	}
}
