package capability

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"unsafe"

	"github.com/golang-jwt/jwt/v5"
)

// Verify checks token and returns its claims. It refuses, with an error
// wrapping the matching sentinel:
//   - tokens over 4 KiB, before any parsing (ErrTooLarge);
//   - anything that is not three strictly base64url-encoded JSON segments, or
//     lacks sid, jti, sub, iat, nbf or exp (ErrMalformed);
//   - any alg but EdDSA, and any signature not made by this Authority's key
//     (ErrSignature);
//   - another issuer (ErrIssuer) or another install's audience (ErrAudience);
//   - exp passed, or nbf or iat in the future, beyond a 5 s leeway
//     (ErrExpired, ErrNotYetValid);
//   - a revoked session, token or epoch (ErrRevoked), checked on every call.
//
// The error never contains the token. The returned Claims is the caller's own
// copy.
func (a *Authority) Verify(token string) (*Claims, error) {
	if len(token) > maxTokenSize {
		return nil, fmt.Errorf("verify token: %d bytes, at most %d: %w", len(token), maxTokenSize, ErrTooLarge)
	}
	r := a.revs.Load()
	if r == nil {
		return nil, fmt.Errorf("verify token: %w", ErrNoRevocations)
	}
	key := tokenKey(token)
	ch, now := a.cache.Load(), a.clock()
	c, ok := ch.get(key, now)
	if !ok {
		// A hit needs no alphabet check: its exact bytes passed one before.
		if !tokenAlphabet(token) {
			return nil, fmt.Errorf("verify token: byte outside base64url: %w", ErrMalformed)
		}
		var err error
		if c, err = a.verifyFull(token); err != nil {
			return nil, fmt.Errorf("verify token: %w", err)
		}
	}
	if err := r.Revoked(c); err != nil {
		return nil, fmt.Errorf("verify token for session %s: %w", c.SID, err)
	}
	if !ok {
		ch.put(key, c, now)
	}
	return cloneClaims(c), nil
}

// tokenKey is the cache's key for token: its SHA-256, so that the cache
// holds no bearer token. The hash reads the string's bytes in place, as
// Sum256 neither keeps nor modifies its input. Both alternatives cost
// more on every request: []byte(token) copies the token to the heap, and
// copying it into a [maxTokenSize]byte on the stack gives Verify a 4 KiB
// frame, which doubles the stack of every request goroutine (8 to 16 KiB)
// for the life of the connection.
func tokenKey(token string) [sha256.Size]byte {
	return sha256.Sum256(unsafe.Slice(unsafe.StringData(token), len(token)))
}

// tokenAlphabet reports whether token holds only base64url characters and
// dots. Go's base64 decoder skips '\r' and '\n' even in strict mode, so
// without this check one token would have endless spellings, each a fresh
// cache entry and each a way past exact-match scanning of live tokens.
func tokenAlphabet(token string) bool {
	for i := 0; i < len(token); i++ {
		if !tokenBytes[token[i]] {
			return false
		}
	}
	return true
}

var tokenBytes = func() (t [256]bool) {
	for _, b := range []byte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.") {
		t[b] = true
	}
	return t
}()

// verifyFull parses and checks token without the cache. The error it returns
// is built from a fixed reason and a sentinel only: jwt's own messages can
// quote decoded bytes, and those are the attacker's token.
func (a *Authority) verifyFull(token string) (*Claims, error) {
	c := new(Claims)
	_, err := a.parser.ParseWithClaims(token, c, a.keyFunc)
	if err != nil {
		return nil, classify(err)
	}
	switch {
	case c.SID == "" || !idRE.MatchString(c.SID):
		return nil, fmt.Errorf("bad sid: %w", ErrMalformed)
	case c.ID == "" || !idRE.MatchString(c.ID):
		return nil, fmt.Errorf("bad jti: %w", ErrMalformed)
	case !agentRE.MatchString(c.Subject):
		return nil, fmt.Errorf("bad sub: %w", ErrMalformed)
	case c.IssuedAt == nil:
		return nil, fmt.Errorf("missing iat: %w", ErrMalformed)
	case len(c.Audience) != 1:
		return nil, fmt.Errorf("%d audiences, want 1: %w", len(c.Audience), ErrAudience)
	}
	// No token of ours lives longer than max_ttl, nor reaches past its
	// session's start plus max_ttl: a longer one was not minted here.
	if exp := c.ExpiresAt.Time; exp.Sub(c.IssuedAt.Time) > a.maxTTL+leeway || exp.Sub(c.SessionStart()) > a.maxTTL+leeway {
		return nil, fmt.Errorf("lifetime over max_ttl: %w", ErrMalformed)
	}
	if err := c.Scope.Validate(); err != nil {
		return nil, fmt.Errorf("bad scope: %w", ErrMalformed)
	}
	return c, nil
}

// errWrongKey is returned by keyFunc; the parser wraps it, classify maps it.
var errWrongKey = errors.New("token names another signing key")

// keyFunc returns this Authority's public key, whatever the token says. A kid
// naming another key is refused early for a clearer error, but the signature
// check against our own key is what decides.
func (a *Authority) keyFunc(t *jwt.Token) (any, error) {
	if kid, ok := t.Header["kid"]; ok && kid != a.kid {
		return nil, errWrongKey
	}
	return a.pub, nil
}

// classify maps a jwt error to one of our sentinels with a fixed reason. The
// order matters only for joined claim errors: the most fundamental wins.
func classify(err error) error {
	for _, m := range []struct {
		jwtErr error
		reason string
		ours   error
	}{
		{jwt.ErrTokenMalformed, "cannot decode", ErrMalformed},
		{errWrongKey, "signed by another key", ErrSignature},
		{jwt.ErrTokenUnverifiable, "unsupported signing method", ErrSignature},
		{jwt.ErrTokenSignatureInvalid, "bad signature or method", ErrSignature},
		{jwt.ErrTokenRequiredClaimMissing, "missing required claim", ErrMalformed},
		{jwt.ErrTokenInvalidAudience, "wrong audience", ErrAudience},
		{jwt.ErrTokenInvalidIssuer, "wrong issuer", ErrIssuer},
		{jwt.ErrTokenNotValidYet, "nbf in the future", ErrNotYetValid},
		{jwt.ErrTokenUsedBeforeIssued, "iat in the future", ErrNotYetValid},
		{jwt.ErrTokenExpired, "exp passed", ErrExpired},
	} {
		if errors.Is(err, m.jwtErr) {
			return fmt.Errorf("%s: %w", m.reason, m.ours)
		}
	}
	return fmt.Errorf("unclassified failure: %w", ErrMalformed)
}

// cloneClaims returns a copy of c that shares nothing with it, so a caller
// editing its claims cannot change what the cache hands out next. It makes
// two allocations: one for the claims and their dates, one for all strings.
func cloneClaims(c *Claims) *Claims {
	out := &struct {
		Claims
		exp, nbf, iat jwt.NumericDate
	}{Claims: *c}
	out.ExpiresAt = cloneDate(c.ExpiresAt, &out.exp)
	out.NotBefore = cloneDate(c.NotBefore, &out.nbf)
	out.IssuedAt = cloneDate(c.IssuedAt, &out.iat)
	sc := &c.Scope
	all := make([]string, 0, len(c.Audience)+len(sc.Providers)+len(sc.Models)+len(sc.Endpoints))
	all, out.Audience = appendClone(all, c.Audience)
	all, out.Scope.Providers = appendClone(all, sc.Providers)
	all, out.Scope.Models = appendClone(all, sc.Models)
	_, out.Scope.Endpoints = appendClone(all, sc.Endpoints)
	return &out.Claims
}

// appendClone appends src to all and returns the grown all and a capped view
// of the copy (nil if src is nil, so JSON omitempty is preserved).
func appendClone(all, src []string) ([]string, []string) {
	if src == nil {
		return all, nil
	}
	n := len(all)
	all = append(all, src...)
	return all, all[n:len(all):len(all)]
}

func cloneDate(d, into *jwt.NumericDate) *jwt.NumericDate {
	if d == nil {
		return nil
	}
	*into = *d
	return into
}
