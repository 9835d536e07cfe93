// Package capability mints and verifies the capability tokens that agents
// hold instead of provider keys, and keeps the sessions and the revocation
// list those tokens name.
//
// Threat model: the holder of a token is an untrusted agent (prompt-injected
// or buggy) running as the user. It can read its token, replay it, edit it,
// re-encode it, forge headers and send arbitrary bytes to Verify. It cannot
// read the daemon's memory or the Ed25519 signing key, which the daemon loads
// from the OS keychain and hands to NewAuthority.
//
// Invariants:
//   - Verify accepts only tokens this Authority signed (EdDSA, pinned; alg
//     "none", HMAC and other keys are refused), for this install (aud) and
//     issuer, inside their validity window (5 s leeway), and not revoked.
//   - Revocation is checked on every Verify, cache hits included; it is keyed
//     on sid, jti and the epoch, never on the token's spelling.
//   - Revocations are on disk (fsynced, renamed into place) before
//     RevokeSession, RevokeToken or BumpEpoch return; a corrupt list stops
//     OpenRevocations rather than silently forgetting kills.
//   - Errors never contain the token or any part of it.
//   - Every limit (token size, TTL, scope lists, cache size) is enforced, not
//     clamped.
package capability

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

const (
	// maxTokenSize bounds what Verify will parse or hash. A minted token with
	// a maximal scope is about 2 KiB; anything bigger is not ours.
	maxTokenSize = 4 << 10
	// DefaultTTL is the lifetime of a token minted with ttl 0: long enough for
	// an agent task, short enough that a leaked token soon dies on its own.
	DefaultTTL = 15 * time.Minute
	// DefaultMaxTTL is the longest lifetime NewAuthority allows when given 0:
	// a day covers an overnight agent run.
	DefaultMaxTTL = 24 * time.Hour
	// leeway is the clock skew tolerated on exp, nbf and iat. The daemon is
	// both issuer and verifier, so this only absorbs second truncation.
	leeway = 5 * time.Second
	// issuer is the iss of every token.
	issuer = "tokfence"
	// idBytes is the size of sid and jti: 128 bits, unguessable.
	idBytes = 16
)

// Token errors. Verify returns errors wrapping exactly one of these (plus
// ErrRevoked from the revocation list); callers branch with errors.Is.
var (
	ErrMalformed   = errors.New("malformed token")
	ErrTooLarge    = errors.New("token too large")
	ErrSignature   = errors.New("invalid token signature")
	ErrExpired     = errors.New("token expired")
	ErrNotYetValid = errors.New("token not yet valid")
	ErrAudience    = errors.New("token for another install")
	ErrIssuer      = errors.New("token from another issuer")
	ErrRevoked     = errors.New("token revoked")
	ErrTTLTooLong  = errors.New("ttl longer than the maximum")
	// ErrSessionTooOld refuses a renewal of a session that has reached
	// its start plus the maximum TTL.
	ErrSessionTooOld = errors.New("session has reached the maximum ttl since its first token")
	ErrInvalidAgent  = errors.New("invalid agent name")
	// ErrNoRevocations is returned by Mint and Verify until SetRevocations is
	// called: without a revocation list no kill could take effect, so the
	// Authority fails closed.
	ErrNoRevocations = errors.New("no revocation list attached")
)

var (
	// agentRE is what an agent name may be: it shows up in logs, the audit
	// trail and the CLI, so it is kept to a safe, short alphabet.
	agentRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)
	idRE    = regexp.MustCompile(`^[0-9a-f]{32}$`)
)

// Claims is the payload of a capability token.
type Claims struct {
	jwt.RegisteredClaims
	SID   string `json:"sid"`
	Scope Scope  `json:"scope"`
	Epoch uint64 `json:"ep"`
	// Started is when the session's first token was issued (Unix
	// seconds): renewals never reach past it plus the maximum TTL.
	Started int64 `json:"sst,omitempty"`
}

// UnmarshalJSON decodes c strictly where jwt would not: exp, nbf, iat
// and sst must be JSON numbers. jwt.NumericDate also takes a string that
// holds a number ("exp":"9999999999"), a second spelling of every token
// that nothing of ours ever signs.
func (c *Claims) UnmarshalJSON(b []byte) error {
	var dates struct {
		Exp json.RawMessage `json:"exp"`
		Nbf json.RawMessage `json:"nbf"`
		Iat json.RawMessage `json:"iat"`
		Sst json.RawMessage `json:"sst"`
	}
	if err := json.Unmarshal(b, &dates); err != nil {
		return err
	}
	for _, d := range []json.RawMessage{dates.Exp, dates.Nbf, dates.Iat, dates.Sst} {
		if len(d) > 0 && (d[0] < '0' || d[0] > '9') {
			return errDateNotNumber
		}
	}
	type plain Claims // without this method
	return json.Unmarshal(b, (*plain)(c))
}

var errDateNotNumber = errors.New("exp, nbf, iat and sst must be JSON numbers")

// SessionStart is when the session of c began: Started, or for a token
// without it, its issue time.
func (c *Claims) SessionStart() time.Time {
	if c.Started > 0 {
		return time.Unix(c.Started, 0)
	}
	if c.IssuedAt != nil {
		return c.IssuedAt.Time
	}
	return time.Time{}
}

// Authority mints and verifies capability tokens for one install. It is safe
// for concurrent use.
type Authority struct {
	priv      ed25519.PrivateKey
	pub       ed25519.PublicKey
	kid       string
	installID string
	clock     func() time.Time
	maxTTL    time.Duration
	parser    *jwt.Parser
	cache     atomic.Pointer[cache]
	revs      atomic.Pointer[Revocations]
}

// NewAuthority returns an Authority that signs with priv for the install
// installID (the aud of every token). clock nil means time.Now; maxTTL 0 means
// DefaultMaxTTL. The caller must attach a revocation list with
// SetRevocations before minting or verifying.
func NewAuthority(priv ed25519.PrivateKey, installID string, clock func() time.Time, maxTTL time.Duration) (*Authority, error) {
	if len(priv) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("new authority: signing key is %d bytes, want %d", len(priv), ed25519.PrivateKeySize)
	}
	if installID == "" {
		return nil, errors.New("new authority: empty install id")
	}
	if clock == nil {
		clock = time.Now
	}
	if maxTTL == 0 {
		maxTTL = DefaultMaxTTL
	}
	if maxTTL < 0 {
		return nil, fmt.Errorf("new authority: negative max ttl %v", maxTTL)
	}
	pub := priv.Public().(ed25519.PublicKey)
	a := &Authority{
		priv:      priv,
		pub:       pub,
		kid:       KeyID(pub),
		installID: installID,
		clock:     clock,
		maxTTL:    maxTTL,
	}
	a.cache.Store(newCache(defaultCacheSize))
	a.parser = jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodEdDSA.Alg()}),
		jwt.WithIssuer(issuer),
		jwt.WithAudience(installID),
		jwt.WithExpirationRequired(),
		jwt.WithNotBeforeRequired(),
		jwt.WithIssuedAt(),
		jwt.WithStrictDecoding(),
		jwt.WithLeeway(leeway),
		jwt.WithTimeFunc(clock),
	)
	return a, nil
}

// KeyID returns a short fingerprint of pub (8 bytes of its SHA-256, hex) that
// tells signing keys apart in logs. It reveals nothing about the private key.
func KeyID(pub ed25519.PublicKey) string {
	return fingerprint(pub)
}

// SetRevocations attaches the revocation list that Mint stamps epochs from and
// Verify checks on every call.
func (a *Authority) SetRevocations(r *Revocations) {
	a.revs.Store(r)
}

// SetCacheSize replaces the verified-token cache with one holding at most n
// entries; n 0 disables caching (every Verify is a full verification).
func (a *Authority) SetCacheSize(n int) {
	a.cache.Store(newCache(n))
}

// InstallID returns the install id tokens are bound to.
func (a *Authority) InstallID() string { return a.installID }

// Mint issues a token for a new session of agent with scope. ttl 0 means
// DefaultTTL; a ttl above the Authority's maximum is refused with
// ErrTTLTooLong rather than shortened, so a caller never gets less than it
// asked for without knowing.
func (a *Authority) Mint(agent string, scope Scope, ttl time.Duration) (string, *Claims, error) {
	sid, err := randomID()
	if err != nil {
		return "", nil, fmt.Errorf("mint token for agent %s: %w", agent, err)
	}
	tok, c, err := a.mint(sid, agent, scope, ttl, time.Time{})
	if err != nil {
		return "", nil, fmt.Errorf("mint token for agent %s: %w", agent, err)
	}
	return tok, c, nil
}

// Renew issues a further token for the existing session sid, which began
// at started: same agent and scope, a new jti, valid for ttl (0 means
// DefaultTTL) from now but never past started plus the maximum TTL. That
// end is the one limit Renew applies by shortening, since a renewal asks
// for "more" rather than for an exact lifetime; the returned claims say
// when the token expires. It is refused with ErrSessionTooOld once the
// session has reached its end, and with ErrRevoked if it is revoked.
func (a *Authority) Renew(sid, agent string, scope Scope, started time.Time, ttl time.Duration) (string, *Claims, error) {
	if started.IsZero() {
		return "", nil, fmt.Errorf("renew session %s: unknown start", sid)
	}
	tok, c, err := a.mint(sid, agent, scope, ttl, started)
	if err != nil {
		return "", nil, fmt.Errorf("renew session %s: %w", sid, err)
	}
	return tok, c, nil
}

// mint signs a token of session sid; started is the session's start for
// a renewal, zero for a new session (which starts now).
func (a *Authority) mint(sid, agent string, scope Scope, ttl time.Duration, started time.Time) (string, *Claims, error) {
	r := a.revs.Load()
	if r == nil {
		return "", nil, ErrNoRevocations
	}
	if !idRE.MatchString(sid) {
		return "", nil, errors.New("session id is not 32 lowercase hex digits")
	}
	if !agentRE.MatchString(agent) {
		return "", nil, fmt.Errorf("agent %q: %w", agent, ErrInvalidAgent)
	}
	if err := scope.Validate(); err != nil {
		return "", nil, err
	}
	switch {
	case ttl == 0:
		ttl = DefaultTTL
	case ttl < time.Second:
		return "", nil, fmt.Errorf("ttl %v: shorter than one second", ttl)
	case ttl > a.maxTTL:
		return "", nil, fmt.Errorf("ttl %v over %v: %w", ttl, a.maxTTL, ErrTTLTooLong)
	}
	jti, err := randomID()
	if err != nil {
		return "", nil, err
	}
	now := a.clock().Truncate(time.Second)
	if started.IsZero() {
		started = now
	}
	exp := now.Add(ttl)
	if end := started.Truncate(time.Second).Add(a.maxTTL); exp.After(end) {
		if end.Sub(now) < time.Second {
			return "", nil, ErrSessionTooOld
		}
		exp = end
	}
	c := &Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    issuer,
			Subject:   agent,
			Audience:  jwt.ClaimStrings{a.installID},
			ExpiresAt: jwt.NewNumericDate(exp),
			NotBefore: jwt.NewNumericDate(now),
			IssuedAt:  jwt.NewNumericDate(now),
			ID:        jti,
		},
		SID:     sid,
		Scope:   scope,
		Epoch:   r.Epoch(),
		Started: started.Unix(),
	}
	if err := r.Revoked(c); err != nil {
		return "", nil, err
	}
	t := jwt.NewWithClaims(jwt.SigningMethodEdDSA, c)
	t.Header["kid"] = a.kid
	tok, err := t.SignedString(a.priv)
	if err != nil {
		return "", nil, fmt.Errorf("sign: %w", err)
	}
	if len(tok) > maxTokenSize {
		return "", nil, fmt.Errorf("scope makes a %d-byte token: %w", len(tok), ErrTooLarge)
	}
	return tok, c, nil
}

// randomID returns 128 random bits as 32 lowercase hex digits: one spelling
// only, safe in paths, logs and URLs.
func randomID() (string, error) {
	var b [idBytes]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("random id: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// LatestExpiry returns a time after which every token this Authority has
// minted so far is dead, leeway included: a safe until for RevokeSession when
// a session's own expiry is unknown.
func (a *Authority) LatestExpiry() time.Time {
	return a.clock().Add(a.maxTTL + leeway)
}
