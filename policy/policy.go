// Package policy decides what a session's behaviour costs it.
//
// Each agent session carries a risk State — GREEN, YELLOW, ORANGE or RED —
// that sensor hits and misbehaviour raise. A Policy, built from the user's
// TOML file or from Default, maps each Event to a Decision; a Risk applies
// decisions to one session; Allows, RateLimit and FullAudit say what a state
// permits.
//
// Threat model: the agent is assumed hostile once it trips a sensor, and it
// runs as the user, so it may also be able to edit the policy file. Hence:
//
//   - Monotonic: a session's state only rises. There is no API to lower it,
//     and a rule that maps an event to GREEN changes nothing.
//   - Per-session: a Risk belongs to one session and shares no state with
//     any other; one session's hits never move another's state.
//   - Floors: a provider key or capability token in any body, and a canary
//     anywhere, is RED (blocked and redacted) whatever the file says. A
//     policy file can make things stricter, never weaker, for these.
//   - Nothing half-applied: a Policy is immutable once built. Parse checks
//     the whole file before anything is returned, and Watcher swaps in a new
//     Policy only when the new file is entirely valid, keeping the last good
//     one otherwise.
//
// An Event carries rule names and classes, never matched bytes, so nothing
// in this package can leak a secret into a reason string.
package policy

import (
	"slices"
	"strconv"

	"github.com/tokfence/tokfence/policy/pathglob"
)

// Policy is a parsed, validated policy. It is immutable and safe for
// concurrent use. A nil *Policy behaves as Default().
type Policy struct {
	source    string // file name, or "built-in"
	digest    string // hex SHA-256 of the file bytes; "" for built-in
	rules     []rule // the file's top-level rules, in file order
	agents    map[string]*agentPolicy
	limits    [numStates]Limit
	readOnly  []pathglob.Endpoint
	canaryEnv []string
	auditFrom State // FullAudit is true from this state up
}

// agentPolicy holds one agent's overrides. limits is already merged with
// the file's limits, so a lookup never needs to fall back.
type agentPolicy struct {
	rules  []rule
	limits [numStates]Limit
}

// rule maps matching events to a decision. Empty match fields match
// anything; minCount makes a rule apply only to repeated events.
type rule struct {
	kind      Kind   // 0 matches any kind
	class     string // "" matches any class
	glob      string // sensor rule glob; "" matches any rule
	direction string // "" matches both directions
	minCount  int    // the rule applies once count >= minCount
	to        State
	block     bool
	redact    bool
	reason    string
	where     string // "rule[2] at policy.toml:14"; "" for built-in rules
}

func (r *rule) matches(ev Event, count int) bool {
	return count >= r.minCount &&
		(r.kind == 0 || r.kind == ev.Kind) &&
		(r.class == "" || r.class == ev.Class) &&
		(r.direction == "" || r.direction == ev.Direction) &&
		(r.glob == "" || pathglob.Match(r.glob, ev.Rule))
}

// Source returns the file the policy was read from, or "built-in".
func (p *Policy) Source() string { return p.orDefault().source }

// Digest returns the hex SHA-256 of the policy file's bytes, for the audit
// trail, or "" for the built-in policy.
func (p *Policy) Digest() string { return p.orDefault().digest }

// CanaryEnv returns the environment variable names under which exec places
// the session's canary. The slice is a copy.
func (p *Policy) CanaryEnv() []string { return slices.Clone(p.orDefault().canaryEnv) }

// ReadOnly returns the "METHOD /glob" endpoints an ORANGE session may call.
func (p *Policy) ReadOnly() []string {
	var out []string
	for _, e := range p.orDefault().readOnly {
		out = append(out, e.String())
	}
	return out
}

// Decide returns what to do about ev in a session of agent, where count is
// how many events of this kind and rule the session has now seen, this one
// included (values below 1 count as 1).
//
// Rules are looked up in layers: the agent's own rules, then the file's
// top-level rules, then the built-in rules. The first layer with any
// matching rule decides; within it the matching rules combine (the highest
// state, and block or redact if any says so), so "YELLOW, and ORANGE from
// the third time" is two rules that need no ordering. The floors are applied
// last and cannot be lowered by any layer.
func (p *Policy) Decide(agent string, ev Event, count int) Decision {
	p = p.orDefault()
	if count < 1 {
		count = 1
	}
	var layers [3][]rule
	if a := p.agents[agent]; a != nil {
		layers[0] = a.rules
	}
	layers[1], layers[2] = p.rules, builtinRules
	d := Decision{To: Green, Reason: ev.String() + ": no rule matched"}
	for _, layer := range layers {
		if ld, ok := decideLayer(layer, ev, count); ok {
			d = ld
			break
		}
	}
	return applyFloor(ev, d)
}

func decideLayer(rules []rule, ev Event, count int) (Decision, bool) {
	var d Decision
	var top *rule
	for i := range rules {
		r := &rules[i]
		if !r.matches(ev, count) {
			continue
		}
		if top == nil || r.to > top.to {
			top = r
		}
		d.Block = d.Block || r.block
		d.Redact = d.Redact || r.redact
	}
	if top == nil {
		return d, false
	}
	d.To = top.to
	where := top.where
	if where == "" {
		where = "built-in"
	}
	d.Reason = reason(top.reason, ev, count) + " [" + where + "]"
	return d, true
}

func reason(custom string, ev Event, count int) string {
	s := custom
	if s == "" {
		s = ev.String()
	}
	if count > 1 {
		s += " (" + strconv.Itoa(count) + " times)"
	}
	return s
}

// applyFloor raises d to RED, blocked and redacted, for the events no policy
// may soften: a provider key or capability token in any body, a canary
// anywhere.
func applyFloor(ev Event, d Decision) Decision {
	hard := ev.Kind == Canary || ev.Class == ClassCanary ||
		ev.Class == ClassProviderKey || ev.Class == ClassCapabilityToken
	if !hard {
		return d
	}
	if d.To < Red {
		d.Reason = ev.String() + " [always RED]"
	}
	d.To, d.Block, d.Redact = Red, true, true
	return d
}

// Allows reports whether a session in state s may call method on path.
// GREEN and YELLOW allow everything (the grant's scope is checked
// elsewhere); ORANGE allows only the read-only endpoints, and never a path
// that pathglob.CheckPath refuses (dot segments, encoded separators, path
// parameters), whatever the globs say; RED allows nothing.
func (p *Policy) Allows(s State, method, path string) bool {
	p = p.orDefault()
	switch {
	case s <= Yellow:
		return true
	case s == Orange:
		if pathglob.CheckPath(path) != nil {
			return false
		}
		for _, e := range p.readOnly {
			if e.Match(method, path) {
				return true
			}
		}
	}
	return false
}

// RateLimit returns the request rate limit for a session of agent in state
// s. RED gets the ORANGE limit, though Allows refuses it everything anyway.
func (p *Policy) RateLimit(agent string, s State) Limit {
	p = p.orDefault()
	if s > Red {
		s = Red
	}
	if a := p.agents[agent]; a != nil {
		return a.limits[s]
	}
	return p.limits[s]
}

// FullAudit reports whether a session in state s gets full audit detail.
// By default that is YELLOW and up.
func (p *Policy) FullAudit(s State) bool { return s >= p.orDefault().auditFrom }
