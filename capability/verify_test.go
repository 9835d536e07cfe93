package capability

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/tokfence/tokfence/policy/pathglob"
)

func TestVerifyAcceptsMintedToken(t *testing.T) {
	fx := newFixture(t)
	tok, minted := fx.mint(t, "coder")
	for i := range 2 { // the second call is a cache hit
		c, err := fx.a.Verify(tok)
		if err != nil {
			t.Fatalf("Verify #%d: %v", i, err)
		}
		if c.SID != minted.SID || c.ID != minted.ID || c.Subject != "coder" || c.Epoch != 0 {
			t.Fatalf("Verify #%d = %+v, want claims of %+v", i, c, minted)
		}
		c.Scope.Providers[0] = "mutated" // must not poison the cache
		c.ExpiresAt.Time = c.ExpiresAt.Add(time.Hour)
	}
	if c, _ := fx.a.Verify(tok); c.Scope.Providers[0] != "openai" || !c.ExpiresAt.Equal(minted.ExpiresAt.Time) {
		t.Fatalf("cached claims were modified through a returned copy: %+v", c)
	}
}

func TestVerifyAttacks(t *testing.T) {
	fx := newFixture(t)
	tokA, _ := fx.mint(t, "coder")
	_, cB := fx.mint(t, "coder")
	other := fx.authority(t, testKey(2), testInstall)
	otherInstall := fx.authority(t, fx.priv, "install-other")
	otherTok, _, err := other.Mint("coder", testScope, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	otherInstallTok, _, err := otherInstall.Mint("coder", testScope, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	forged := func(edit func(jwt.MapClaims)) string {
		m := fx.claimsMap()
		edit(m)
		return sign(t, jwt.SigningMethodEdDSA, m, fx.priv)
	}
	now := fx.clk.Now().Unix()

	tests := []struct {
		name  string
		token string
		want  error
	}{
		{"garbage is malformed", "not a token at all", ErrMalformed},
		{"an empty token is malformed", "", ErrMalformed},
		{"two segments are malformed", "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ4In0", ErrMalformed},
		{"a token with a trailing fourth segment is malformed", tokA + ".x", ErrMalformed},
		{"an edited payload widening the scope fails the signature", editPayload(t, tokA, func(m map[string]any) {
			m["scope"] = map[string]any{"providers": []string{"openai", "anthropic"}}
		}), ErrSignature},
		{"session A's token edited to name session B fails the signature", editPayload(t, tokA, func(m map[string]any) {
			m["sid"] = cB.SID
		}), ErrSignature},
		{"an edited exp fails the signature", editPayload(t, tokA, func(m map[string]any) {
			m["exp"] = now + 10*3600
		}), ErrSignature},
		{"a token without exp is malformed", forged(func(m jwt.MapClaims) { delete(m, "exp") }), ErrMalformed},
		{"a token without iat is malformed", forged(func(m jwt.MapClaims) { delete(m, "iat") }), ErrMalformed},
		{"a token without nbf is malformed", forged(func(m jwt.MapClaims) { delete(m, "nbf") }), ErrMalformed},
		{"a token without sid is malformed", forged(func(m jwt.MapClaims) { delete(m, "sid") }), ErrMalformed},
		{"a token without jti is malformed", forged(func(m jwt.MapClaims) { delete(m, "jti") }), ErrMalformed},
		{"a token without sub is malformed", forged(func(m jwt.MapClaims) { delete(m, "sub") }), ErrMalformed},
		{"a token with an empty scope is malformed", forged(func(m jwt.MapClaims) { m["scope"] = map[string]any{} }), ErrMalformed},
		{"a signed scope with a glob the language refuses is malformed", forged(func(m jwt.MapClaims) {
			m["scope"] = map[string]any{"providers": []string{"openai"}, "models": []string{"gpt-4o-?"}}
		}), ErrMalformed},
		{"a signed scope with a bad endpoint is malformed", forged(func(m jwt.MapClaims) {
			m["scope"] = map[string]any{"providers": []string{"openai"}, "endpoints": []string{"GET /v1/[a-z]*"}}
		}), ErrMalformed},
		{"a future nbf is not yet valid", forged(func(m jwt.MapClaims) { m["nbf"] = now + 60 }), ErrNotYetValid},
		{"a future iat is not yet valid", forged(func(m jwt.MapClaims) { m["iat"] = now + 60 }), ErrNotYetValid},
		{"an exp in the past is expired", forged(func(m jwt.MapClaims) { m["exp"] = now - 60 }), ErrExpired},
		{"a string exp is malformed", forged(func(m jwt.MapClaims) { m["exp"] = fmt.Sprint(now + 3600) }), ErrMalformed},
		{"a string nbf is malformed", forged(func(m jwt.MapClaims) { m["nbf"] = fmt.Sprint(now) }), ErrMalformed},
		{"a string iat is malformed", forged(func(m jwt.MapClaims) { m["iat"] = fmt.Sprint(now) }), ErrMalformed},
		{"a string sst is malformed", forged(func(m jwt.MapClaims) { m["sst"] = fmt.Sprint(now) }), ErrMalformed},
		{"a far-future string exp is malformed", forged(func(m jwt.MapClaims) { m["exp"] = "9999999999" }), ErrMalformed},
		{"a lifetime over max_ttl is malformed", forged(func(m jwt.MapClaims) { m["exp"] = now + int64(DefaultMaxTTL/time.Second) + 3600 }), ErrMalformed},
		{"a renewal past the session's start + max_ttl is malformed", forged(func(m jwt.MapClaims) {
			m["sst"] = now - int64(DefaultMaxTTL/time.Second)
		}), ErrMalformed},
		{"alg none is refused", unsigned(t, "none", fx.claimsMap()), ErrSignature},
		{"alg None is refused", unsigned(t, "None", fx.claimsMap()), ErrSignature},
		{"alg NONE is refused", unsigned(t, "NONE", fx.claimsMap()), ErrSignature},
		{"alg nOnE is refused", unsigned(t, "nOnE", fx.claimsMap()), ErrSignature},
		{"HS256 keyed with the public key bytes is refused",
			sign(t, jwt.SigningMethodHS256, fx.claimsMap(), []byte(fx.priv.Public().(ed25519.PublicKey))), ErrSignature},
		{"another install's key is refused", otherTok, ErrSignature},
		{"another key without a kid is refused", sign(t, jwt.SigningMethodEdDSA, fx.claimsMap(), testKey(3)), ErrSignature},
		{"another install id is the wrong audience", otherInstallTok, ErrAudience},
		{"a second audience is refused", forged(func(m jwt.MapClaims) { m["aud"] = []string{testInstall, "x"} }), ErrAudience},
		{"a missing audience is malformed", forged(func(m jwt.MapClaims) { delete(m, "aud") }), ErrMalformed},
		{"a wrong issuer is refused", forged(func(m jwt.MapClaims) { m["iss"] = "evil" }), ErrIssuer},
		{"a CR inside the signature is malformed", tokA[:len(tokA)-6] + "\r" + tokA[len(tokA)-6:], ErrMalformed},
		{"a newline inside the payload is malformed", strings.Replace(tokA, ".", ".\n", 1), ErrMalformed},
		{"base64 padding on the signature is malformed", tokA + "==", ErrMalformed},
		{"standard base64 characters are malformed", strings.NewReplacer("-", "+", "_", "/").Replace(tokA) + "+/", ErrMalformed},
		{"an oversized token is refused before parsing", strings.Repeat("A", maxTokenSize+1), ErrTooLarge},
		{"an oversized valid-looking token is refused", tokA + strings.Repeat("A", maxTokenSize), ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := fx.a.Verify(tt.token)
			if !errors.Is(err, tt.want) || c != nil {
				t.Fatalf("Verify(%.40q) = %v, %v, want nil, %v", tt.token, c, err, tt.want)
			}
			assertNoTokenInError(t, tt.token, err)
		})
	}
}

// assertNoTokenInError fails if err quotes the token or any long part of it.
func assertNoTokenInError(t *testing.T, token string, err error) {
	t.Helper()
	for _, part := range append(strings.Split(token, "."), token) {
		if len(part) >= 8 && strings.Contains(err.Error(), part) {
			t.Fatalf("error %q quotes the token", err)
		}
	}
}

func TestVerifyLeeway(t *testing.T) {
	tests := []struct {
		name    string
		advance time.Duration
		want    error
	}{
		{"a token just before exp is valid", time.Hour - time.Second, nil},
		{"a token 3s past exp is inside the leeway", time.Hour + 3*time.Second, nil},
		{"a token 6s past exp is expired", time.Hour + 6*time.Second, ErrExpired},
		{"a token a day past exp is expired", 25 * time.Hour, ErrExpired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fx := newFixture(t)
			tok, _ := fx.mint(t, "coder")
			if _, err := fx.a.Verify(tok); err != nil { // warm the cache
				t.Fatalf("Verify fresh: %v", err)
			}
			fx.clk.Advance(tt.advance)
			if _, err := fx.a.Verify(tok); !errors.Is(err, tt.want) {
				t.Fatalf("Verify after %v = %v, want %v", tt.advance, err, tt.want)
			}
		})
	}
}

func TestVerifyRefusesRespelledLastChar(t *testing.T) {
	fx := newFixture(t)
	tok, _ := fx.mint(t, "coder")
	if _, err := fx.a.Verify(tok); err != nil { // cache the canonical spelling
		t.Fatal(err)
	}
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	last := strings.IndexByte(alphabet, tok[len(tok)-1])
	// A 64-byte signature is 86 characters: the last carries 2 bits of
	// signature and 4 padding bits, so 15 other characters decode to the same
	// bytes under lenient decoding.
	respelled := 0
	for i := range len(alphabet) {
		if i == last || i>>4 != last>>4 {
			continue
		}
		respelled++
		bad := tok[:len(tok)-1] + alphabet[i:i+1]
		if _, err := fx.a.Verify(bad); !errors.Is(err, ErrMalformed) {
			t.Errorf("Verify(respelled %q) = %v, want %v", alphabet[i], err, ErrMalformed)
		}
	}
	if respelled != 15 {
		t.Fatalf("tried %d re-spellings, want 15", respelled)
	}
}

func TestVerifyWithoutRevocationsFailsClosed(t *testing.T) {
	fx := newFixture(t)
	tok, _ := fx.mint(t, "coder")
	a, err := NewAuthority(fx.priv, testInstall, fx.clk.Now, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Verify(tok); !errors.Is(err, ErrNoRevocations) {
		t.Fatalf("Verify without revocations = %v, want %v", err, ErrNoRevocations)
	}
	if _, _, err := a.Mint("coder", testScope, 0); !errors.Is(err, ErrNoRevocations) {
		t.Fatalf("Mint without revocations = %v, want %v", err, ErrNoRevocations)
	}
}

func TestMintRefusals(t *testing.T) {
	fx := newFixture(t)
	big := Scope{Providers: []string{"openai"}}
	for range maxPatterns {
		big.Models = append(big.Models, strings.Repeat("m", pathglob.MaxLen))
	}
	tests := []struct {
		name  string
		agent string
		scope Scope
		ttl   time.Duration
		want  error
	}{
		{"a ttl over the maximum is refused, not clamped", "coder", testScope, 25 * time.Hour, ErrTTLTooLong},
		{"an agent name with a slash is refused", "a/b", testScope, 0, ErrInvalidAgent},
		{"an empty agent name is refused", "", testScope, 0, ErrInvalidAgent},
		{"an agent name of 65 bytes is refused", strings.Repeat("a", 65), testScope, 0, ErrInvalidAgent},
		{"a scope that would make a token over 4 KiB is refused", "coder", big, 0, ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tok, _, err := fx.a.Mint(tt.agent, tt.scope, tt.ttl); !errors.Is(err, tt.want) || tok != "" {
				t.Fatalf("Mint(%q, ttl %v) = %q, %v, want %v", tt.agent, tt.ttl, tok, err, tt.want)
			}
		})
	}
	if _, _, err := fx.a.Mint("coder", Scope{}, 0); err == nil {
		t.Fatal("Mint with an empty scope succeeded")
	}
	for _, s := range []Scope{
		{Providers: []string{"openai"}, Models: []string{"gpt-4o-?"}},
		{Providers: []string{"openai"}, Endpoints: []string{"GET /v1/[a-z]*"}},
	} {
		if _, _, err := fx.a.Mint("coder", s, 0); err == nil || !strings.Contains(err.Error(), "only '*' is special") {
			t.Fatalf("Mint(%+v) = %v, want the glob refused, saying only '*' is special", s, err)
		}
	}
	if _, _, err := fx.a.Mint("coder", testScope, -time.Second); err == nil {
		t.Fatal("Mint with a negative ttl succeeded")
	}
	_, c, err := fx.a.Mint("coder", testScope, 0)
	if err != nil || c.ExpiresAt.Sub(c.IssuedAt.Time) != DefaultTTL {
		t.Fatalf("Mint with ttl 0 = %v, %v, want a %v token", c, err, DefaultTTL)
	}
	if _, err := NewAuthority(fx.priv[:10], testInstall, nil, 0); err == nil {
		t.Fatal("NewAuthority with a short key succeeded")
	}
}

func TestCacheBounded(t *testing.T) {
	fx := newFixture(t)
	fx.a.SetCacheSize(3)
	for range 10 {
		tok, _ := fx.mint(t, "coder")
		if _, err := fx.a.Verify(tok); err != nil {
			t.Fatal(err)
		}
	}
	if n := fx.a.cache.Load().len(); n != 3 {
		t.Fatalf("cache holds %d entries, want 3", n)
	}
}

// TestRenewNeverReachesPastTheSessionsMaximum renews one session through
// a day and more of its clock: each renewal is a new token of the same
// session that verifies, none expires past the first token's issue plus
// the maximum TTL, and once there the session cannot be renewed.
func TestRenewNeverReachesPastTheSessionsMaximum(t *testing.T) {
	fx := newFixture(t)
	_, first := fx.mint(t, "coder")
	start := first.IssuedAt.Time
	end := start.Add(DefaultMaxTTL)
	c := first
	for step := 0; ; step++ {
		fx.clk.Advance(10 * time.Hour)
		tok, next, err := fx.a.Renew(c.SID, c.Subject, c.Scope, c.SessionStart(), 12*time.Hour)
		if fx.clk.Now().Add(time.Second).After(end) {
			if !errors.Is(err, ErrSessionTooOld) {
				t.Fatalf("renew at %v past the session's end %v = %v, want %v", fx.clk.Now(), end, err, ErrSessionTooOld)
			}
			break
		}
		if err != nil {
			t.Fatalf("renew %d: %v", step, err)
		}
		if next.SID != first.SID || next.ID == c.ID || !next.SessionStart().Equal(start) {
			t.Fatalf("renew %d = %+v, want the same session and start, a new jti", step, next)
		}
		if next.ExpiresAt.Time.After(end) {
			t.Fatalf("renew %d expires %v, past the session's end %v", step, next.ExpiresAt.Time, end)
		}
		if _, err := fx.a.Verify(tok); err != nil {
			t.Fatalf("renewed token: %v", err)
		}
		c = next
	}
	// A start forged later than the real one is the caller's bug to
	// avoid; a missing start is refused.
	if _, _, err := fx.a.Renew(first.SID, "coder", testScope, time.Time{}, 0); err == nil {
		t.Fatal("renew without the session's start succeeded")
	}
}
