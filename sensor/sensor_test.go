package sensor

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
)

func mustMatcher(t testing.TB, secrets []Secret, opts Options) *Matcher {
	t.Helper()
	m, err := NewMatcher(secrets, opts)
	if err != nil {
		t.Fatalf("NewMatcher: %v", err)
	}
	return m
}

// scan writes body in chunks of n bytes and returns forwarded bytes and hits.
func scan(m *Matcher, ctype, body string, n int) ([]byte, []Hit) {
	st := m.NewStream(Request, ctype)
	defer st.Release() // later scans reuse it: every test runs on reused streams too
	var out []byte
	var hits []Hit
	for i := 0; i < len(body); i += n {
		f, h := st.Write([]byte(body[i:min(i+n, len(body))]))
		out, hits = append(out, f...), append(hits, h...)
	}
	f, h := st.Close()
	return append(out, f...), append(hits, h...)
}

func TestNewMatcherSecretLength(t *testing.T) {
	tests := []struct {
		name  string
		value string
		err   error
	}{
		{"empty secret is refused", "", ErrShortSecret},
		{"seven bytes are refused", "abcdefg", ErrShortSecret},
		{"eight bytes are accepted", "abcdefgh", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewMatcher([]Secret{{ID: "x", Class: ClassCanary, Value: []byte(tt.value)}}, Options{})
			if !errors.Is(err, tt.err) {
				t.Errorf("NewMatcher(%q) = %v, want %v", tt.value, err, tt.err)
			}
			if err != nil && strings.Contains(err.Error(), tt.value) && tt.value != "" {
				t.Errorf("NewMatcher error %q contains the secret", err)
			}
		})
	}
}

func TestFingerprint(t *testing.T) {
	mac := hmac.New(sha256.New, []byte("k"))
	mac.Write([]byte("secret-value"))
	want := hex.EncodeToString(mac.Sum(nil))[:16] // 64 bits: no collisions in a long trail
	if got := Fingerprint([]byte("k"), []byte("secret-value")); got != want {
		t.Errorf("Fingerprint(k, secret-value) = %q, want %q", got, want)
	}
	if Fingerprint([]byte("k2"), []byte("secret-value")) == want {
		t.Errorf("Fingerprint ignores its key")
	}
}

func TestDirectionString(t *testing.T) {
	if Request.String() != "request" || Response.String() != "response" {
		t.Errorf("Direction strings = %q, %q", Request, Response)
	}
}

func TestB64RunsEveryAlignment(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	secret := []byte(randStr(r, alnum, 40))
	encs := []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding}
	for off := 0; off < 12; off++ {
		for tail := 0; tail < 4; tail++ {
			blob := append(append(randBytes(r, "", off), secret...), randBytes(r, "", tail)...)
			for _, enc := range encs {
				e := enc.EncodeToString(blob)
				found := false
				for _, f := range expand(secret) {
					found = found || strings.Contains(e, string(f.b))
				}
				if !found {
					t.Errorf("expand(secret) misses the secret at offset %d, tail %d in %q", off, tail, e)
				}
			}
		}
	}
}

// normalised returns what the main lane saw for body.
func normalised(t *testing.T, body string) string {
	m := mustMatcher(t, nil, Options{})
	st := m.NewStream(Request, "application/json")
	st.Write([]byte(body))
	st.Close()
	return string(st.main.bytesAt(0, st.main.pos))
}

func TestNormaliser(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"unicode escape", `a\u0041b`, "aAb"},
		{"surrogate pair", `\ud83d\ude00`, "\U0001F600"},
		{"lone high surrogate", `\ud83dx`, "\uFFFDx"},
		{"lone low surrogate", `\ude00`, "\uFFFD"},
		{"high surrogate then plain escape", `\ud83d\n`, "\uFFFD\n"},
		{"short escapes", `\/\"\\\n\t`, "/\"\\\n\t"},
		{"unknown escape passes", `\q`, `\q`},
		{"broken unicode escape passes", `\u00zz`, `\u00zz`},
		{"trailing backslash", `ab\`, `ab\`},
		{"percent", `%41%2b%2F`, "A+/"},
		{"bad percent passes", `100%zz %4`, "100%zz %4"},
		{"fullwidth", "ｓｋ－ａｎｔ", "sk-ant"},
		{"escaped fullwidth", `\uff53\uff4b`, "sk"},
		{"zero width removed", "s\u200bk\u200c-\u200d\u2060a\ufeffn\u00adt", "sk-ant"},
		{"escaped zero width removed", `s\u200bk`, "sk"},
		{"percent zero width removed", `s%E2%80%8Bk`, "sk"},
		{"percent fullwidth", `%EF%BD%93k`, "sk"},
		{"other utf-8 kept", "é€😀", "é€😀"},
		{"truncated utf-8 kept", "a\xe2\x80", "a\xe2\x80"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := normalised(t, tt.in); got != tt.want {
				t.Errorf("normalise(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestSecretNeverForwardedWhole(t *testing.T) {
	s := fixtureSecrets["openai"]
	m := mustMatcher(t, []Secret{s}, Options{FormatRules: true})
	for enc, f := range encoders {
		body := `{"content":"x ` + f(string(s.Value)) + ` y"}`
		st := m.NewStream(Request, "application/json")
		var out []byte
		found := false
		for i := 0; i < len(body); i++ {
			fwd, hits := st.Write([]byte{body[i]})
			if len(hits) > 0 {
				found = true
			}
			if !found && bytes.Contains(append(out, fwd...), []byte(f(string(s.Value)))[:len(f(string(s.Value)))-1]) {
				t.Fatalf("encoding %s: all but the last byte forwarded before the hit", enc)
			}
			out = append(out, fwd...)
		}
		fwd, hits := st.Close()
		found = found || len(hits) > 0
		if out = append(out, fwd...); string(out) != body || !found {
			t.Errorf("encoding %s: forwarded %d of %d bytes, found %v", enc, len(out), len(body), found)
		}
	}
}

func TestNothingHeldAtEventBoundaries(t *testing.T) {
	m := mustMatcher(t, []Secret{fixtureSecrets["openai"], fixtureSecrets["token"]}, Options{FormatRules: true})
	events := []string{
		`data: {"choices":[{"delta":{"content":"Hello"}}]}`,
		`data: {"choices":[{"delta":{"content":" use sk-... as a placeholder"}}]}`,
		`data: {"choices":[{"delta":{"content":"AKIA and ghp_ and -----BEGIN"}}]}`,
		`data: {"choices":[{"delta":{"content":"\u00e9 %20 \\"}}]}`,
		`data: [DONE]`,
	}
	st := m.NewStream(Response, "text/event-stream")
	written, forwarded := 0, 0
	for _, e := range events {
		fwd, _ := st.Write([]byte(e + "\n\n"))
		written, forwarded = written+len(e)+2, forwarded+len(fwd)
		if written != forwarded {
			t.Errorf("after event %q: %d bytes held", e, written-forwarded)
		}
	}
}

func TestHoldIsBounded(t *testing.T) {
	s := fixtureSecrets["anthropic"]
	m := mustMatcher(t, []Secret{s}, Options{FormatRules: true})
	// A partial match kept open by thousands of zero-width characters.
	body := string(s.Value[:20]) + strings.Repeat("\u200b", 20000) + string(s.Value[20:])
	st := m.NewStream(Request, "text/plain")
	written, forwarded, found := 0, 0, false
	for i := 0; i < len(body); i += 100 {
		p := body[i:min(i+100, len(body))]
		fwd, hits := st.Write([]byte(p))
		written, forwarded = written+len(p), forwarded+len(fwd)
		found = found || len(hits) > 0
		if written-forwarded > m.MaxHold() {
			t.Fatalf("held %d bytes, MaxHold %d", written-forwarded, m.MaxHold())
		}
	}
	if !found {
		t.Errorf("secret padded with zero-width characters not found")
	}
}

func TestRedactOnlyWhatIsAsked(t *testing.T) {
	key, canary := fixtureSecrets["openai"], fixtureSecrets["canary"]
	m := mustMatcher(t, []Secret{key, canary}, Options{Redact: func(h Hit) bool { return h.Class == ClassCanary }})
	body := `{"a":"` + string(key.Value) + `","b":"` + b64(string(canary.Value)) + `"}`
	out, hits := scan(m, "application/json", body, 7)
	if len(hits) != 2 {
		t.Fatalf("Scan = %v, want 2 hits", hits)
	}
	if !bytes.Contains(out, key.Value) || bytes.Contains(out, []byte(b64(string(canary.Value))[4:20])) {
		t.Errorf("Scan forwarded %q, want the key kept and the canary redacted", out)
	}
}

func TestHitCarriesNoSecretBytes(t *testing.T) {
	var secrets []Secret
	for _, n := range []string{"openai", "anthropic", "token", "canary"} {
		secrets = append(secrets, fixtureSecrets[n])
	}
	m := mustMatcher(t, secrets, Options{FormatRules: true, FingerprintKey: []byte("k")})
	var body strings.Builder
	for _, s := range secrets {
		for _, f := range encoders {
			body.WriteString(`"` + f(string(s.Value)) + `" `)
		}
	}
	_, hits := scan(m, "application/json", body.String(), 1000)
	if len(hits) < len(secrets)*len(encoders) {
		t.Errorf("Scan = %d hits, want at least %d", len(hits), len(secrets)*len(encoders))
	}
	for _, h := range hits {
		for _, field := range []string{h.Rule, h.SecretID, h.Encoding, h.Fingerprint} {
			for _, s := range secrets {
				for i := 0; i+8 <= len(s.Value); i++ {
					if strings.Contains(field, string(s.Value[i:i+8])) {
						t.Fatalf("hit %+v carries secret bytes", h)
					}
				}
			}
		}
	}
}

func TestSetSwapLeavesStreamsAlone(t *testing.T) {
	old, next := fixtureSecrets["openai"], fixtureSecrets["anthropic"]
	var set Set
	if set.Load() != nil {
		t.Fatal("empty Set.Load() != nil")
	}
	set.Store(mustMatcher(t, []Secret{old}, Options{}))
	st := set.Load().NewStream(Request, "")
	st.Write(old.Value[:10])
	set.Store(mustMatcher(t, []Secret{next}, Options{}))
	_, hits := st.Write(old.Value[10:])
	if len(hits) != 1 || hits[0].SecretID != old.ID {
		t.Errorf("stream after swap = %v, want a hit on %s", hits, old.ID)
	}
	if _, hits := scan(set.Load(), "", string(old.Value), 5); len(hits) != 0 {
		t.Errorf("new matcher still finds the rotated key: %v", hits)
	}
}

func TestMatcherConcurrentUse(t *testing.T) {
	s := fixtureSecrets["token"]
	m := mustMatcher(t, []Secret{s}, Options{FormatRules: true})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body := strings.Repeat("x", g) + hex.EncodeToString(s.Value)
			if _, hits := scan(m, "", body, g+1); len(hits) != 1 {
				t.Errorf("goroutine %d: Scan = %v, want 1 hit", g, hits)
			}
		}()
	}
	wg.Wait()
}

func TestWriteSteadyStateAllocs(t *testing.T) {
	var secrets []Secret
	for _, s := range fixtureSecrets {
		secrets = append(secrets, s)
	}
	m := mustMatcher(t, secrets, Options{FormatRules: true})
	chunk := []byte(strings.Repeat(`{"role":"user","content":"tell me about \u00e9t\u00e9 in 100% detail"},`, 50))
	for _, ct := range []string{"application/json", "text/event-stream"} {
		st := m.NewStream(Request, ct)
		st.Write(chunk)
		if n := testing.AllocsPerRun(50, func() { st.Write(chunk) }); n != 0 {
			t.Errorf("Write(%s) allocates %v times per call, want 0", ct, n)
		}
	}
}

func TestWriteAfterClose(t *testing.T) {
	m := mustMatcher(t, nil, Options{FormatRules: true})
	st := m.NewStream(Request, "")
	w, _ := st.Write([]byte("ab AKI"))
	out := string(w)
	if f, _ := st.Close(); out+string(f) != "ab AKI" || out == "ab AKI" {
		t.Errorf("Write, Close = %q, %q, want the keyword prefix held to the end", out, f)
	}
	if f, h := st.Write([]byte("x")); f != nil || h != nil {
		t.Errorf("Write after Close = %q, %v, want nothing", f, h)
	}
}

// TestFlushReleasesAllAndKeepsScanning: after a Flush every byte written
// is out, and a secret split across the flush point is still found, on
// the write that completes it, with its later part redacted.
func TestFlushReleasesAllAndKeepsScanning(t *testing.T) {
	s := fixtureSecrets["openai"]
	m := mustMatcher(t, []Secret{s}, Options{FormatRules: true, Redact: func(Hit) bool { return true }})
	half := len(s.Value) / 2
	messages := []string{`{"a":"x"} AKI`, `{"b":"` + string(s.Value[:half]), string(s.Value[half:]) + `"}`, `sk-`}
	st := m.NewStream(Request, "")
	defer st.Release()
	var hits []Hit
	for i, msg := range messages {
		fwd, h := st.Write([]byte(msg))
		out := string(fwd)
		hits = append(hits, h...)
		out += string(st.Flush())
		switch {
		case i == 2 && (len(hits) != 1 || hits[0].SecretID != s.ID):
			t.Fatalf("message %d: hits %v, want the split key found", i, hits)
		case i == 2 && strings.Contains(out, string(s.Value[half:])):
			t.Fatalf("message %d forwarded %q: the key's second half is not redacted", i, out)
		case i != 2 && out != msg:
			t.Fatalf("Write+Flush(%q) forwarded %q, want it whole", msg, out)
		}
	}
	if f, h := st.Close(); len(f) != 0 || len(h) != 0 {
		t.Errorf("Close after Flush = %q, %v, want nothing left", f, h)
	}
	if st.Flush() != nil {
		t.Errorf("Flush after Close returned bytes")
	}
}

func TestScanReader(t *testing.T) {
	s := fixtureSecrets["canary"]
	m := mustMatcher(t, []Secret{s}, Options{})
	body := "aaa " + b64(string(s.Value)) + " bbb"
	hits, err := ScanReader(iotest.OneByteReader(strings.NewReader(body)), m, Response, "text/plain")
	if err != nil || len(hits) != 1 || hits[0].Direction != Response {
		t.Errorf("ScanReader = %v, %v, want one response hit", hits, err)
	}
	_, err = ScanReader(iotest.ErrReader(errors.New("boom")), m, Request, "")
	if err == nil {
		t.Errorf("ScanReader(failing reader) = nil error")
	}
}

// TestSplitSecretAcrossSSEEventsIsHeld: a held key echoed across two SSE
// deltas used to go out up to its last delta before the match completed
// (78 of 164 characters in an attack run). A partial match of a secret of
// crossEventHold bytes or more now holds the events it spans, so no more
// than crossEventHold-1 of its characters are forwarded before the hit,
// and the redaction covers the rest. A partial of a format keyword is
// not held (TestNothingHeldAtEventBoundaries).
func TestSplitSecretAcrossSSEEventsIsHeld(t *testing.T) {
	s := fixtureSecrets["openai"]
	m := mustMatcher(t, []Secret{s}, Options{FormatRules: true, Redact: func(h Hit) bool { return h.Class == ClassProviderKey }})
	k := string(s.Value)
	for _, cut := range []int{crossEventHold, len(k) / 2, len(k) - 3} {
		events := []string{
			`data: {"choices":[{"delta":{"content":"echo: ` + k[:cut] + `"}}]}`,
			`data: {"choices":[{"delta":{"content":"` + k[cut:] + ` done"}}]}`,
			`data: [DONE]`,
		}
		st := m.NewStream(Response, "text/event-stream")
		var out []byte
		found := false
		for i, e := range events {
			fwd, hits := st.Write([]byte(e + "\n\n"))
			out = append(out, fwd...)
			found = found || len(hits) > 0
			if i == 0 && bytes.Contains(out, []byte(k[:crossEventHold])) {
				t.Errorf("cut %d: %d characters of the key forwarded after its first delta: %q", cut, crossEventHold, out)
			}
		}
		fwd, hits := st.Close()
		out = append(out, fwd...)
		found = found || len(hits) > 0
		st.Release()
		if !found {
			t.Fatalf("cut %d: the split key was not found", cut)
		}
		for i := 0; i+crossEventHold <= len(k); i++ {
			if bytes.Contains(out, []byte(k[i:i+crossEventHold])) {
				t.Fatalf("cut %d: %d characters of the key from %d reached the agent:\n%s", cut, crossEventHold, i, out)
			}
		}
	}
}
