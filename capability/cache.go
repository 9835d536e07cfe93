package capability

import (
	"crypto/sha256"
	"encoding/hex"
	"sync"
	"time"
)

// defaultCacheSize bounds the verified-token cache. Only tokens that passed a
// full verification get in, so its size tracks tokens this daemon minted and
// that are still live: a user runs tens of agents, not thousands. At about
// 1 KiB an entry the bound caps the cache near 4 MiB however long the daemon
// runs and however many tokens it mints.
const defaultCacheSize = 4096

// cache remembers tokens that passed full verification, keyed on the SHA-256
// of their exact bytes, so that steady-state Verify skips the Ed25519 check
// and the JSON decoding. Revocation is deliberately not cached: Verify checks
// it on hits too. An entry is served only while the clock is inside
// [nbf, exp); past exp it is dropped, so no entry outlives its token. It is
// safe for concurrent use.
type cache struct {
	max int
	mu  sync.RWMutex
	m   map[[sha256.Size]byte]cacheEntry
}

type cacheEntry struct {
	claims   *Claims
	nbf, exp time.Time
}

// newCache returns a cache of at most size entries; size <= 0 disables it.
func newCache(size int) *cache {
	return &cache{max: size, m: make(map[[sha256.Size]byte]cacheEntry)}
}

// get returns the claims cached under key if they are valid at now. The
// claims are shared: callers must not modify them.
func (c *cache) get(key [sha256.Size]byte, now time.Time) (*Claims, bool) {
	if c.max <= 0 {
		return nil, false
	}
	c.mu.RLock()
	e, ok := c.m[key]
	c.mu.RUnlock()
	if !ok {
		return nil, false
	}
	if !now.Before(e.exp) {
		c.mu.Lock()
		delete(c.m, key)
		c.mu.Unlock()
		return nil, false
	}
	if now.Before(e.nbf) {
		// The clock went backwards; let a full verification decide.
		return nil, false
	}
	return e.claims, true
}

// put caches claims under key. A full cache first drops expired entries and,
// if none were, one arbitrary entry: cheap, and a miss only costs a full
// verification.
func (c *cache) put(key [sha256.Size]byte, claims *Claims, now time.Time) {
	if c.max <= 0 || claims.ExpiresAt == nil || claims.NotBefore == nil {
		return
	}
	e := cacheEntry{claims: claims, nbf: claims.NotBefore.Time, exp: claims.ExpiresAt.Time}
	if !now.Before(e.exp) {
		return // valid only by leeway: get would drop it at once
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[key]; !ok && len(c.m) >= c.max {
		c.evictLocked(now)
	}
	c.m[key] = e
}

// evictLocked makes room for one entry, dropping everything expired at now,
// or else one arbitrary entry.
func (c *cache) evictLocked(now time.Time) {
	n := len(c.m)
	for k, e := range c.m {
		if !now.Before(e.exp) {
			delete(c.m, k)
		}
	}
	if len(c.m) < n {
		return
	}
	for k := range c.m {
		delete(c.m, k)
		return
	}
}

// len returns the number of cached entries.
func (c *cache) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m)
}

// fingerprint returns 16 hex digits of the SHA-256 of b: enough to tell keys
// apart, useless for recovering them.
func fingerprint(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}
