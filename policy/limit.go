package policy

import (
	"fmt"
	"sync"
	"time"
)

// Limit is a request rate limit: PerMinute requests a minute on average,
// with bursts of up to Burst. PerMinute 0 means unlimited; Burst 0 means a
// burst of PerMinute, a full minute's allowance.
type Limit struct {
	PerMinute int
	Burst     int
}

// Unlimited reports whether l imposes no limit.
func (l Limit) Unlimited() bool { return l.PerMinute <= 0 }

func (l Limit) burst() float64 {
	if l.Burst > 0 {
		return float64(l.Burst)
	}
	return float64(l.PerMinute)
}

// Limiter is a token bucket for one session. The zero value is ready to use
// and safe for concurrent use; it must not be copied after first use. The
// limit is passed on every call because it follows the session's state: when
// the state rises to a tighter limit, the bucket shrinks to the new burst at
// once rather than letting saved-up tokens through.
type Limiter struct {
	mu     sync.Mutex
	tokens float64
	last   time.Time
	limit  Limit
	primed bool
}

// Allow reports whether one request may go ahead at time now under l, and
// takes a token if so. Time that runs backwards adds no tokens.
func (lim *Limiter) Allow(now time.Time, l Limit) bool {
	lim.mu.Lock()
	defer lim.mu.Unlock()
	if l.Unlimited() {
		lim.limit, lim.primed = l, false
		return true
	}
	if !lim.primed || lim.limit.Unlimited() {
		lim.tokens, lim.last, lim.primed = l.burst(), now, true
	}
	if now.After(lim.last) {
		rate := float64(l.PerMinute) / float64(time.Minute)
		lim.tokens += rate * float64(now.Sub(lim.last))
		lim.last = now
	}
	lim.tokens = min(lim.tokens, l.burst())
	lim.limit = l
	if lim.tokens < 1 {
		return false
	}
	lim.tokens--
	return true
}

// Refund gives back a token Allow took under l, for a request that was
// then refused for another reason: it spent nothing. The bucket never
// holds more than l's burst.
func (lim *Limiter) Refund(l Limit) {
	lim.mu.Lock()
	defer lim.mu.Unlock()
	if l.Unlimited() || !lim.primed {
		return
	}
	lim.tokens = min(lim.tokens+1, l.burst())
}

// RetryAfter is how long from now until Allow under l would next let a
// request through: 0 when it would now, never more than a minute's refill.
func (lim *Limiter) RetryAfter(now time.Time, l Limit) time.Duration {
	lim.mu.Lock()
	defer lim.mu.Unlock()
	if l.Unlimited() || !lim.primed {
		return 0
	}
	tokens := lim.tokens
	if now.After(lim.last) {
		tokens += float64(l.PerMinute) / float64(time.Minute) * float64(now.Sub(lim.last))
	}
	if tokens >= 1 {
		return 0
	}
	return time.Duration((1 - tokens) / float64(l.PerMinute) * float64(time.Minute))
}

// looser reports whether a lets more through than b.
func looser(a, b Limit) bool {
	switch {
	case b.Unlimited():
		return false
	case a.Unlimited():
		return true
	}
	return a.PerMinute > b.PerMinute || a.burst() > b.burst()
}

// tighter returns the limit that lets through no more than either a or b.
func tighter(a, b Limit) Limit {
	switch {
	case a.Unlimited():
		return b
	case b.Unlimited():
		return a
	}
	return Limit{PerMinute: min(a.PerMinute, b.PerMinute), Burst: int(min(a.burst(), b.burst()))}
}

// String formats l as "30/min, burst 10" or "unlimited".
func (l Limit) String() string {
	if l.Unlimited() {
		return "unlimited"
	}
	return fmt.Sprintf("%d/min, burst %d", l.PerMinute, int(l.burst()))
}
