package policy

import (
	"sync"
	"time"
)

// Risk is one session's risk state machine. The zero value is GREEN and
// ready to use, reading time.Now; use NewRisk to inject a clock. A Risk is
// safe for concurrent use and must not be copied after first use.
//
// The state only rises: Observe is the only way to change it and it never
// lowers it, so no policy, reload or event sequence can make a session look
// safer than it has been.
type Risk struct {
	mu     sync.Mutex
	now    func() time.Time
	state  State
	reason string
	since  time.Time
	counts map[countKey]int
}

// maxCountKeys bounds the distinct (kind, rule) pairs one session counts.
// Rule names come from a fixed set of sensor rules and scope checks, but if
// a caller ever put agent-chosen text there, an agent could otherwise grow
// this map without end. Pairs past the bound share one counter per kind.
const maxCountKeys = 256

// countKey is what "repeated" means: the same kind of event for the same
// rule within one session.
type countKey struct {
	kind Kind
	rule string
}

// NewRisk returns a GREEN Risk that reads the time from now.
func NewRisk(now func() time.Time) *Risk {
	return &Risk{now: now}
}

// Observe records ev for this session of agent, asks p (nil means Default)
// for a decision, and raises the state to the decision's state if that is
// higher. It returns the decision, the state before and after, and whether
// the state changed. The decision's Block and Redact apply even when the
// state does not change.
func (r *Risk) Observe(p *Policy, agent string, ev Event) (d Decision, from, to State, changed bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.counts == nil {
		r.counts = make(map[countKey]int)
	}
	k := countKey{ev.Kind, ev.Rule}
	if _, ok := r.counts[k]; !ok && len(r.counts) >= maxCountKeys {
		k.rule = "\x00overflow"
	}
	r.counts[k]++
	d = p.Decide(agent, ev, r.counts[k])
	from = r.state
	if d.To > r.state {
		r.state, r.reason, r.since = d.To, d.Reason, r.clock()
		changed = true
	}
	return d, from, r.state, changed
}

func (r *Risk) clock() time.Time {
	if r.now == nil {
		return time.Now()
	}
	return r.now()
}

// State returns the session's current state.
func (r *Risk) State() State {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.state
}

// Reason returns why the state last rose, or "" while it is GREEN.
func (r *Risk) Reason() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.reason
}

// Since returns when the state last rose, or the zero time while it is
// GREEN.
func (r *Risk) Since() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.since
}
