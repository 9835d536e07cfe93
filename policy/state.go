package policy

import (
	"fmt"
	"strings"
)

// State is a session's risk state. States are ordered: a higher state is
// never less restrictive than a lower one, and a session's state only rises.
type State uint8

// The risk states, from least to most severe.
const (
	Green  State = iota // the grant's full scope
	Yellow              // full audit detail, tighter rate limit
	Orange              // read-only endpoints only
	Red                 // session revoked
)

const numStates = int(Red) + 1

var stateNames = [numStates]string{"GREEN", "YELLOW", "ORANGE", "RED"}

// String returns the state's upper-case name, such as "GREEN".
func (s State) String() string {
	if int(s) < numStates {
		return stateNames[s]
	}
	return fmt.Sprintf("State(%d)", uint8(s))
}

// MarshalText encodes s as its name. It fails for a value outside the four
// states so that a corrupt state is never written as if it were valid.
func (s State) MarshalText() ([]byte, error) {
	if int(s) >= numStates {
		return nil, fmt.Errorf("marshal state: invalid value %d", uint8(s))
	}
	return []byte(stateNames[s]), nil
}

// UnmarshalText decodes a state name. Names are case-insensitive so that a
// hand-written "red" is not a surprise; anything else is an error.
func (s *State) UnmarshalText(b []byte) error {
	st, err := ParseState(string(b))
	if err != nil {
		return err
	}
	*s = st
	return nil
}

// ParseState returns the state named name, ignoring case.
func ParseState(name string) (State, error) {
	for i, n := range stateNames {
		if strings.EqualFold(name, n) {
			return State(i), nil
		}
	}
	return Green, fmt.Errorf("unknown state %q (want GREEN, YELLOW, ORANGE or RED)", name)
}

// Kind says what happened in a session.
type Kind uint8

// The event kinds. The zero Kind is not a valid event; in a rule it means
// "any kind".
const (
	SensorHit      Kind = iota + 1 // a sensor matched a secret in a body
	ScopeViolation                 // a request outside the grant's scope
	AuthFailure                    // a valid session's token used wrongly
	Canary                         // the session's canary was seen anywhere
	LimitExceeded                  // the session hit its rate limit
)

var kindNames = map[Kind]string{
	SensorHit:      "sensor_hit",
	ScopeViolation: "scope_violation",
	AuthFailure:    "auth_failure",
	Canary:         "canary",
	LimitExceeded:  "limit_exceeded",
}

// String returns the kind's snake_case name as used in policy files.
func (k Kind) String() string {
	if n, ok := kindNames[k]; ok {
		return n
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// MarshalText encodes k as its policy-file name.
func (k Kind) MarshalText() ([]byte, error) {
	n, ok := kindNames[k]
	if !ok {
		return nil, fmt.Errorf("marshal kind: invalid value %d", uint8(k))
	}
	return []byte(n), nil
}

// UnmarshalText decodes a kind's policy-file name.
func (k *Kind) UnmarshalText(b []byte) error {
	kk, err := parseKind(string(b))
	if err != nil {
		return err
	}
	*k = kk
	return nil
}

func parseKind(name string) (Kind, error) {
	for k, n := range kindNames {
		if name == n {
			return k, nil
		}
	}
	return 0, fmt.Errorf("unknown kind %q (want sensor_hit, scope_violation, auth_failure, canary or limit_exceeded)", name)
}

// The sensor classes a policy file may name. The sensor package owns them;
// policy treats them as strings but refuses a class it has never heard of,
// because a misspelt class would silently match nothing.
const (
	ClassProviderKey     = "provider_key"
	ClassCapabilityToken = "capability_token"
	ClassCanary          = "canary"
	ClassFormat          = "format"
)

// The directions of a body a sensor scans.
const (
	DirRequest  = "request"
	DirResponse = "response"
)

// Event is one thing that happened in a session and may raise its risk.
// Class and Direction are set for sensor hits; Rule names the sensor rule
// ("openai-key", "exact") or, for other kinds, what was violated.
type Event struct {
	Kind      Kind
	Rule      string
	Class     string
	Direction string
}

// String describes e for logs and reasons. It never contains matched bytes:
// an Event carries none.
func (e Event) String() string {
	var b strings.Builder
	b.WriteString(e.Kind.String())
	if e.Rule != "" {
		fmt.Fprintf(&b, " %q", e.Rule)
	}
	if e.Class != "" {
		fmt.Fprintf(&b, " (%s)", e.Class)
	}
	if e.Direction != "" {
		fmt.Fprintf(&b, " in %s", e.Direction)
	}
	return b.String()
}

// Decision is what a policy says to do about one event. To is the state the
// event calls for; the session's state becomes the higher of To and its
// current state. Block means refuse the request (or cut the response) that
// carried the event; Redact means the matched bytes must not be forwarded.
type Decision struct {
	To     State
	Block  bool
	Redact bool
	Reason string
}
