package policy

import (
	"strings"
	"testing"
)

func TestDefaultDecisions(t *testing.T) {
	p := Default()
	tests := []struct {
		name   string
		ev     Event
		count  int
		to     State
		block  bool
		redact bool
	}{
		{"provider key in a request", Event{SensorHit, "openai-key", ClassProviderKey, DirRequest}, 1, Red, true, true},
		{"provider key in a response", Event{SensorHit, "exact", ClassProviderKey, DirResponse}, 1, Red, true, true},
		{"capability token in a request", Event{SensorHit, "exact", ClassCapabilityToken, DirRequest}, 1, Red, true, true},
		{"capability token in a response", Event{SensorHit, "exact", ClassCapabilityToken, DirResponse}, 1, Red, true, true},
		{"canary sensor hit", Event{SensorHit, "exact", ClassCanary, DirRequest}, 1, Red, true, true},
		{"canary event", Event{Kind: Canary}, 1, Red, true, true},
		{"format secret in a request", Event{SensorHit, "aws-access-key", ClassFormat, DirRequest}, 1, Yellow, false, false},
		{"format secret in a response", Event{SensorHit, "pem-private-key", ClassFormat, DirResponse}, 1, Yellow, false, false},
		{"unknown sensor class", Event{SensorHit, "x", "brand_new", DirRequest}, 1, Yellow, false, false},
		{"first scope violation", Event{Kind: ScopeViolation, Rule: "model"}, 1, Yellow, false, false},
		{"second scope violation", Event{Kind: ScopeViolation, Rule: "model"}, 2, Yellow, false, false},
		{"third scope violation", Event{Kind: ScopeViolation, Rule: "model"}, 3, Orange, false, false},
		{"fourth auth failure", Event{Kind: AuthFailure}, 4, Green, false, false},
		{"fifth auth failure", Event{Kind: AuthFailure}, 5, Orange, false, false},
		{"limit exceeded once", Event{Kind: LimitExceeded}, 1, Green, false, false},
		{"limit exceeded ten times", Event{Kind: LimitExceeded}, 10, Yellow, false, false},
		{"count below one counts as one", Event{Kind: ScopeViolation}, 0, Yellow, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := p.Decide("coder", tt.ev, tt.count)
			if d.To != tt.to || d.Block != tt.block || d.Redact != tt.redact {
				t.Errorf("Decide(%v, %d) = %v block=%v redact=%v, want %v block=%v redact=%v",
					tt.ev, tt.count, d.To, d.Block, d.Redact, tt.to, tt.block, tt.redact)
			}
			if d.Reason == "" {
				t.Errorf("Decide(%v, %d) has no reason", tt.ev, tt.count)
			}
		})
	}
}

func TestNilPolicyIsDefault(t *testing.T) {
	var p *Policy
	ev := Event{SensorHit, "openai-key", ClassProviderKey, DirRequest}
	if d := p.Decide("a", ev, 1); d.To != Red {
		t.Errorf("nil Decide(%v) = %v, want RED", ev, d.To)
	}
	if p.Source() != "built-in" || p.Digest() != "" {
		t.Errorf("nil Source, Digest = %q, %q; want built-in, empty", p.Source(), p.Digest())
	}
}

const layered = `
version = 1

[[rule]]
match = { class = "format", direction = "request" }
to = "YELLOW"
block = true

[[rule]]
match = { class = "format", direction = "response" }
to = "GREEN"

[[rule]]
match = { direction = "response" }
to = "YELLOW"
reason = "anything odd in a response"

[[agent.coder.rule]]
match = { class = "format", rule = "aws-*" }
to = "ORANGE"
redact = true
`

func TestDecideLayers(t *testing.T) {
	p, err := Parse([]byte(layered), "layered.toml")
	if err != nil {
		t.Fatal(err)
	}
	awsReq := Event{SensorHit, "aws-access-key", ClassFormat, DirRequest}
	pemReq := Event{SensorHit, "pem-private-key", ClassFormat, DirRequest}
	tests := []struct {
		name   string
		agent  string
		ev     Event
		to     State
		block  bool
		redact bool
	}{
		{"a file rule can block format secrets in requests", "other", pemReq, Yellow, true, false},
		{"agent rules come before file rules", "coder", awsReq, Orange, false, true},
		{"agent rules that do not match fall through to the file", "coder", pemReq, Yellow, true, false},
		{"matching file rules combine to the highest state", "other",
			Event{SensorHit, "x", ClassFormat, DirResponse}, Yellow, false, false},
		{"a file rule floors at RED for provider keys", "other",
			Event{SensorHit, "openai-key", ClassProviderKey, DirResponse}, Red, true, true},
		{"built-in rules apply where the file says nothing", "other",
			Event{Kind: ScopeViolation}, Yellow, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := p.Decide(tt.agent, tt.ev, 1)
			if d.To != tt.to || d.Block != tt.block || d.Redact != tt.redact {
				t.Errorf("Decide(%q, %v) = %+v, want %v block=%v redact=%v",
					tt.agent, tt.ev, d, tt.to, tt.block, tt.redact)
			}
		})
	}
}

func TestDecideReasonNamesTheRule(t *testing.T) {
	p, err := Parse([]byte(layered), "layered.toml")
	if err != nil {
		t.Fatal(err)
	}
	d := p.Decide("other", Event{SensorHit, "x", "brand_new", DirResponse}, 1)
	if want := "anything odd in a response [rule[3] at layered.toml:13]"; d.Reason != want {
		t.Errorf("Reason = %q, want %q", d.Reason, want)
	}
	d = Default().Decide("a", Event{Kind: ScopeViolation, Rule: "model"}, 3)
	if !strings.Contains(d.Reason, "3 times") || !strings.Contains(d.Reason, "built-in") {
		t.Errorf("Reason = %q, want the count and built-in", d.Reason)
	}
}

func TestFloorSurvivesCatchAllRules(t *testing.T) {
	// A rule that does not name the class cannot be refused at parse time,
	// so the floor must hold when Decide runs.
	p, err := Parse([]byte("version = 1\n[[rule]]\nmatch = { kind = \"sensor_hit\" }\nto = \"GREEN\"\n"), "p.toml")
	if err != nil {
		t.Fatal(err)
	}
	for _, class := range []string{ClassProviderKey, ClassCapabilityToken, ClassCanary} {
		ev := Event{SensorHit, "exact", class, DirRequest}
		if d := p.Decide("a", ev, 1); d.To != Red || !d.Block || !d.Redact {
			t.Errorf("Decide(%v) = %+v, want RED, blocked, redacted", ev, d)
		}
	}
	if d := p.Decide("a", Event{SensorHit, "aws-access-key", ClassFormat, DirRequest}, 1); d.To != Green {
		t.Errorf("format hit under a GREEN rule = %v, want GREEN", d.To)
	}
}
