package policy

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

// fakeClock is a clock tests move by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func TestRiskZeroValueIsGreen(t *testing.T) {
	var r Risk
	if r.State() != Green || r.Reason() != "" || !r.Since().IsZero() {
		t.Errorf("zero Risk = %v %q %v, want GREEN, no reason, zero time", r.State(), r.Reason(), r.Since())
	}
}

func TestRiskIsolatedAcrossSessions(t *testing.T) {
	const sessions = 50
	risks := make([]*Risk, sessions)
	for i := range risks {
		risks[i] = NewRisk(newFakeClock().Now)
	}
	benign := Event{Kind: AuthFailure, Rule: "wrong-provider"} // GREEN until the fifth
	key := Event{SensorHit, "openai-key", ClassProviderKey, DirResponse}
	var wg sync.WaitGroup
	for i, r := range risks {
		wg.Go(func() {
			for range 4 {
				r.Observe(nil, fmt.Sprintf("agent-%d", i), benign)
			}
			if i == 17 {
				r.Observe(nil, "agent-17", key)
			}
		})
	}
	wg.Wait()
	for i, r := range risks {
		want := Green
		if i == 17 {
			want = Red
		}
		if got := r.State(); got != want {
			t.Errorf("session %d State() = %v, want %v", i, got, want)
		}
	}
}

func TestRiskNeverLowers(t *testing.T) {
	toGreen, err := Parse([]byte(`
version = 1
[[rule]]
match = { kind = "scope_violation" }
to = "GREEN"
[[rule]]
match = { class = "format" }
to = "GREEN"
`), "green.toml")
	if err != nil {
		t.Fatal(err)
	}
	clk := newFakeClock()
	r := NewRisk(clk.Now)
	scope := Event{Kind: ScopeViolation, Rule: "endpoint"}
	for i := 1; i <= 3; i++ {
		clk.Advance(time.Second)
		_, from, to, changed := r.Observe(nil, "a", scope)
		if i == 3 && (from != Yellow || to != Orange || !changed) {
			t.Fatalf("third scope violation: %v -> %v changed=%v, want YELLOW -> ORANGE", from, to, changed)
		}
	}
	rose := r.Since()
	if want := clk.Now(); !rose.Equal(want) {
		t.Errorf("Since() = %v, want %v", rose, want)
	}
	reason := r.Reason()
	for _, ev := range []Event{
		{Kind: AuthFailure},
		{SensorHit, "aws-access-key", ClassFormat, DirResponse},
		{Kind: ScopeViolation, Rule: "model"},
	} {
		clk.Advance(time.Minute)
		for _, p := range []*Policy{nil, toGreen} {
			d, from, to, changed := r.Observe(p, "a", ev)
			if from != Orange || to != Orange || changed {
				t.Errorf("Observe(%v) after ORANGE: %v -> %v changed=%v (decision %v), want ORANGE kept",
					ev, from, to, changed, d.To)
			}
		}
	}
	if r.State() != Orange || r.Reason() != reason || !r.Since().Equal(rose) {
		t.Errorf("after benign events: %v %q %v, want ORANGE %q %v", r.State(), r.Reason(), r.Since(), reason, rose)
	}
}

func TestRiskCountsPerKindAndRule(t *testing.T) {
	r := NewRisk(newFakeClock().Now)
	for _, rule := range []string{"model", "endpoint", "provider"} {
		r.Observe(nil, "a", Event{Kind: ScopeViolation, Rule: rule})
	}
	if r.State() != Yellow {
		t.Fatalf("three different violations: State() = %v, want YELLOW", r.State())
	}
	r.Observe(nil, "a", Event{Kind: ScopeViolation, Rule: "model"})
	r.Observe(nil, "a", Event{Kind: ScopeViolation, Rule: "model"})
	if r.State() != Orange {
		t.Errorf("third violation of one rule: State() = %v, want ORANGE", r.State())
	}
}

func TestRiskBlocksEvenWithoutChange(t *testing.T) {
	r := NewRisk(newFakeClock().Now)
	key := Event{SensorHit, "exact", ClassCapabilityToken, DirRequest}
	r.Observe(nil, "a", key)
	d, from, to, changed := r.Observe(nil, "a", key)
	if !d.Block || !d.Redact || from != Red || to != Red || changed {
		t.Errorf("second token hit = %+v %v -> %v changed=%v, want block+redact, RED kept", d, from, to, changed)
	}
}

func TestRiskCountsAreBounded(t *testing.T) {
	r := NewRisk(newFakeClock().Now)
	for i := range 10 * maxCountKeys {
		r.Observe(nil, "a", Event{Kind: LimitExceeded, Rule: fmt.Sprint("path-", i)})
	}
	r.mu.Lock()
	n := len(r.counts)
	r.mu.Unlock()
	if n > maxCountKeys+1 {
		t.Errorf("distinct counters = %d, want at most %d", n, maxCountKeys+1)
	}
	// The overflow counter still counts: ten limit hits past the bound
	// make YELLOW even though each named a new rule.
	if r.State() != Yellow {
		t.Errorf("State() = %v after many limit hits, want YELLOW", r.State())
	}
}
