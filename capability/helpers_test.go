package capability

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// t0 is the fixed start of every test clock.
var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// fakeClock is an injected clock that only moves when told to.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock(t time.Time) *fakeClock {
	c := new(fakeClock)
	c.ns.Store(t.UnixNano())
	return c
}

func (c *fakeClock) Now() time.Time          { return time.Unix(0, c.ns.Load()).UTC() }
func (c *fakeClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// testInstall is the install id of the fixture Authority.
const testInstall = "install-test-1"

// testKey returns a deterministic Ed25519 key, so fuzz corpus tokens stay
// valid across runs.
func testKey(seed byte) ed25519.PrivateKey {
	s := make([]byte, ed25519.SeedSize)
	for i := range s {
		s[i] = seed
	}
	return ed25519.NewKeyFromSeed(s)
}

// fixture is an Authority with its revocation list, clock and key.
type fixture struct {
	a    *Authority
	r    *Revocations
	clk  *fakeClock
	priv ed25519.PrivateKey
	path string
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	fx := &fixture{clk: newFakeClock(t0), priv: testKey(1)}
	fx.path = filepath.Join(t.TempDir(), "revocations.json")
	fx.a = fx.authority(t, fx.priv, testInstall)
	fx.reopen(t)
	return fx
}

// authority builds another Authority sharing the fixture's clock and list.
func (fx *fixture) authority(t testing.TB, priv ed25519.PrivateKey, install string) *Authority {
	t.Helper()
	a, err := NewAuthority(priv, install, fx.clk.Now, 0)
	if err != nil {
		t.Fatalf("NewAuthority: %v", err)
	}
	if fx.r != nil {
		a.SetRevocations(fx.r)
	}
	return a
}

// reopen simulates a daemon restart: the revocation list is read back from
// disk and a fresh Authority (empty cache) is built with the same key.
func (fx *fixture) reopen(t testing.TB) {
	t.Helper()
	r, err := OpenRevocations(fx.path, fx.clk.Now)
	if err != nil {
		t.Fatalf("OpenRevocations: %v", err)
	}
	fx.r = r
	fx.a = fx.authority(t, fx.priv, testInstall)
}

var testScope = Scope{
	Providers: []string{"openai"},
	Models:    []string{"gpt-4o*"},
	Endpoints: []string{"POST /v1/chat/*", "GET /v1/models"},
}

func (fx *fixture) mint(t testing.TB, agent string) (string, *Claims) {
	t.Helper()
	tok, c, err := fx.a.Mint(agent, testScope, time.Hour)
	if err != nil {
		t.Fatalf("Mint(%q): %v", agent, err)
	}
	return tok, c
}

// claimsMap returns the payload of a valid token as a map, for forging.
func (fx *fixture) claimsMap() jwt.MapClaims {
	now := fx.clk.Now().Unix()
	return jwt.MapClaims{
		"iss":   issuer,
		"sub":   "coder",
		"aud":   []string{testInstall},
		"exp":   now + 3600,
		"nbf":   now,
		"iat":   now,
		"jti":   "0123456789abcdef0123456789abcdef",
		"sid":   "fedcba9876543210fedcba9876543210",
		"scope": map[string]any{"providers": []string{"openai"}},
		"ep":    0,
	}
}

// sign signs claims with key under method.
func sign(t testing.TB, method jwt.SigningMethod, claims jwt.Claims, key any) string {
	t.Helper()
	tok, err := jwt.NewWithClaims(method, claims).SignedString(key)
	if err != nil {
		t.Fatalf("sign %s: %v", method.Alg(), err)
	}
	return tok
}

// editPayload decodes tok's payload, applies edit, and re-encodes it,
// keeping the original header and signature.
func editPayload(t testing.TB, tok string, edit func(map[string]any)) string {
	t.Helper()
	parts := strings.Split(tok, ".")
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatalf("decode payload: %v", err)
	}
	m := map[string]any{}
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("unmarshal payload: %v", err)
	}
	edit(m)
	raw, err = json.Marshal(m)
	if err != nil {
		t.Fatalf("marshal payload: %v", err)
	}
	parts[1] = base64.RawURLEncoding.EncodeToString(raw)
	return strings.Join(parts, ".")
}

// unsigned builds a token with header alg and an empty signature.
func unsigned(t testing.TB, alg string, claims jwt.MapClaims) string {
	t.Helper()
	h, _ := json.Marshal(map[string]string{"alg": alg, "typ": "JWT"})
	p, err := json.Marshal(claims)
	if err != nil {
		t.Fatalf("marshal claims: %v", err)
	}
	enc := base64.RawURLEncoding
	return enc.EncodeToString(h) + "." + enc.EncodeToString(p) + "."
}
