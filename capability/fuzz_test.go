package capability

import (
	"crypto/ed25519"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

var updateCorpus = flag.Bool("update-corpus", false, "rewrite testdata/fuzz/FuzzVerify seeds")

// fuzzAuthority is deterministic in key, install and clock, so seed tokens
// written to testdata stay valid: they are minted at t0 for an hour and
// verified at t0+1m.
func fuzzAuthority(t testing.TB, now time.Time) *Authority {
	t.Helper()
	a, err := NewAuthority(testKey(1), testInstall, func() time.Time { return now }, 0)
	if err != nil {
		t.Fatal(err)
	}
	r, err := OpenRevocations(filepath.Join(t.TempDir(), "revocations.json"), nil)
	if err != nil {
		t.Fatal(err)
	}
	a.SetRevocations(r)
	return a
}

// fuzzSeeds returns valid tokens minted at t0 and mutations of them.
func fuzzSeeds(t testing.TB) []string {
	a := fuzzAuthority(t, t0)
	var seeds []string
	for _, scope := range []Scope{testScope, {Providers: []string{"anthropic"}, MaxRequests: 5}} {
		tok, _, err := a.Mint("coder", scope, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		parts := strings.Split(tok, ".")
		flip := []byte(tok)
		flip[len(flip)/2] ^= 1
		seeds = append(seeds,
			tok,
			tok[:len(tok)-1]+"B",
			tok[:len(tok)-10],
			string(flip),
			parts[0]+"."+parts[1]+".",
			parts[0]+"."+parts[1],
			editPayload(t, tok, func(m map[string]any) { m["sid"] = strings.Repeat("0", 32) }),
			unsigned(t, "none", jwt.MapClaims{"sub": "coder"}),
			tok+"="+"",
			"",
			"..",
		)
	}
	return seeds
}

func TestWriteFuzzCorpus(t *testing.T) {
	if !*updateCorpus {
		t.Skip("run with -update-corpus to rewrite the seeds")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzVerify")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for i, s := range fuzzSeeds(t) {
		body := fmt.Sprintf("go test fuzz v1\nstring(%q)\n", s)
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed-%02d", i)), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// FuzzVerify feeds Verify arbitrary strings. Verify must never panic, never
// quote its input in an error, and accept a string only if it is, byte for
// byte, what this Authority signs for the claims it returns: Ed25519 signing
// is deterministic, so that proves the token was minted here and not
// re-spelled, re-encoded or forged.
func FuzzVerify(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	a := fuzzAuthority(f, t0.Add(time.Minute))
	priv := testKey(1)
	f.Fuzz(func(t *testing.T, token string) {
		c, err := a.Verify(token)
		if err != nil {
			if c != nil {
				t.Fatalf("Verify returned claims with error %v", err)
			}
			if strings.Contains(token, ".") && len(token) >= 8 && strings.Contains(err.Error(), token) {
				t.Fatalf("error %q quotes the token", err)
			}
			return
		}
		if want := resign(t, c, priv); want != token {
			t.Fatalf("Verify accepted a token this Authority would not mint:\n got %q\nwant %q", token, want)
		}
	})
}

// resign signs c exactly as Mint does.
func resign(t *testing.T, c *Claims, priv ed25519.PrivateKey) string {
	tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, c)
	tok.Header["kid"] = KeyID(priv.Public().(ed25519.PublicKey))
	s, err := tok.SignedString(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestFuzzSeedsStillValid keeps the fuzz target honest: its first seed file
// must still verify, or the acceptance property above is never exercised.
func TestFuzzSeedsStillValid(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "fuzz", "FuzzVerify", "seed-00"))
	if err != nil {
		t.Fatal(err)
	}
	tok := strings.TrimSuffix(strings.TrimPrefix(string(data), "go test fuzz v1\nstring(\""), "\")\n")
	a := fuzzAuthority(t, t0.Add(time.Minute))
	if _, err := a.Verify(tok); err != nil {
		t.Fatalf("Verify(seed-00) = %v, want nil; rerun with -update-corpus", err)
	}
}
