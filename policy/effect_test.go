package policy

import (
	"testing"
	"time"
)

func TestAllows(t *testing.T) {
	p := Default()
	tests := []struct {
		name   string
		state  State
		method string
		path   string
		want   bool
	}{
		{"green may chat", Green, "POST", "/v1/chat/completions", true},
		{"yellow may chat", Yellow, "POST", "/v1/chat/completions", true},
		{"orange may list models", Orange, "GET", "/v1/models", true},
		{"orange may look up a model", Orange, "GET", "/v1/models/gpt-4o", true},
		{"orange may list gemini models", Orange, "GET", "/v1beta/models", true},
		{"orange may not chat", Orange, "POST", "/v1/chat/completions", false},
		{"orange may not post to models", Orange, "POST", "/v1/models", false},
		{"orange may not delete a model", Orange, "DELETE", "/v1/models/ft-1", false},
		{"orange may not read files", Orange, "GET", "/v1/files", false},
		{"orange dot segments are refused", Orange, "GET", "/v1/files/../models", false},
		{"orange encoded slashes are refused", Orange, "GET", "/v1/files%2fx/models", false},
		{"orange double slashes are refused", Orange, "GET", "/v1//models", false},
		{"orange path parameters are refused", Orange, "GET", "/v1/files/..;/models", false},
		{"orange backslashes are refused", Orange, "GET", "/v1/files\\x/models", false},
		{"orange method is case-sensitive", Orange, "get", "/v1/models", false},
		{"red may not list models", Red, "GET", "/v1/models", false},
		{"red may not chat", Red, "POST", "/v1/chat/completions", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := p.Allows(tt.state, tt.method, tt.path); got != tt.want {
				t.Errorf("Allows(%v, %q, %q) = %v, want %v", tt.state, tt.method, tt.path, got, tt.want)
			}
		})
	}
}

func TestAllowsConfiguredReadOnly(t *testing.T) {
	p, err := Parse([]byte("version = 1\nread_only = [\"GET /v1/files\", \"HEAD *\", \"* /v1/batches\"]\n"), "ro.toml")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		method, path string
		want         bool
	}{
		{"GET", "/v1/files", true},
		{"GET", "/v1/files/x", false},
		{"GET", "/v1/models", false},
		{"HEAD", "/anything/at/all", true},
		{"OPTIONS", "/v1/batches", true}, // '*' for any method, as a grant writes it
		{"OPTIONS", "/v1/batches/x", false},
	} {
		if got := p.Allows(Orange, c.method, c.path); got != c.want {
			t.Errorf("Allows(ORANGE, %q, %q) = %v, want %v", c.method, c.path, got, c.want)
		}
	}
}

func TestRateLimitPerState(t *testing.T) {
	p, err := Parse([]byte(`
version = 1
[limits.yellow]
per_minute = 6
burst = 2
[limits.orange]
per_minute = 2
burst = 1
[agent.slow.limits.green]
per_minute = 60
`), "limits.toml")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		agent string
		state State
		want  Limit
	}{
		{"coder", Green, Limit{}},
		{"coder", Yellow, Limit{PerMinute: 6, Burst: 2}},
		{"coder", Orange, Limit{PerMinute: 2, Burst: 1}},
		{"coder", Red, Limit{PerMinute: 2, Burst: 1}},
		{"slow", Green, Limit{PerMinute: 60}},
		{"slow", Yellow, Limit{PerMinute: 6, Burst: 2}},
	}
	for _, tt := range tests {
		if got := p.RateLimit(tt.agent, tt.state); got != tt.want {
			t.Errorf("RateLimit(%q, %v) = %+v, want %+v", tt.agent, tt.state, got, tt.want)
		}
	}
	if d := Default().RateLimit("x", Yellow); d != (Limit{PerMinute: 30, Burst: 10}) {
		t.Errorf("Default().RateLimit(YELLOW) = %+v, want 30/min burst 10", d)
	}
}

func TestLimiterFollowsState(t *testing.T) {
	p := Default()
	clk := newFakeClock()
	var lim Limiter
	allowed := func(s State, n int) int {
		ok := 0
		for range n {
			if lim.Allow(clk.Now(), p.RateLimit("a", s)) {
				ok++
			}
		}
		return ok
	}
	if got := allowed(Green, 1000); got != 1000 {
		t.Errorf("GREEN allowed %d of 1000, want all", got)
	}
	if got := allowed(Yellow, 100); got != 10 {
		t.Errorf("YELLOW allowed %d at once, want the burst of 10", got)
	}
	clk.Advance(10 * time.Second) // 30/min refills 5 in 10s
	if got := allowed(Yellow, 100); got != 5 {
		t.Errorf("YELLOW after 10s allowed %d, want 5", got)
	}
	clk.Advance(time.Hour)
	if got := allowed(Orange, 100); got != 5 {
		t.Errorf("ORANGE after an idle hour allowed %d, want its burst of 5, not YELLOW's", got)
	}
	clk.Advance(6 * time.Second) // 10/min refills 1 in 6s
	if got := allowed(Orange, 100); got != 1 {
		t.Errorf("ORANGE after 6s allowed %d, want 1", got)
	}
}

func TestLimiterIgnoresBackwardsTime(t *testing.T) {
	clk := newFakeClock()
	var lim Limiter
	l := Limit{PerMinute: 60, Burst: 1}
	if !lim.Allow(clk.Now(), l) {
		t.Fatal("first request refused")
	}
	if lim.Allow(clk.Now().Add(-time.Hour), l) {
		t.Error("time running backwards refilled the bucket")
	}
	if !lim.Allow(clk.Now().Add(time.Second), l) {
		t.Error("one second at 60/min did not refill one token")
	}
}

func TestFullAudit(t *testing.T) {
	for s, want := range map[State]bool{Green: false, Yellow: true, Orange: true, Red: true} {
		if got := Default().FullAudit(s); got != want {
			t.Errorf("FullAudit(%v) = %v, want %v", s, got, want)
		}
	}
	p, err := Parse([]byte("version = 1\nfull_audit_from = \"GREEN\"\n"), "a.toml")
	if err != nil {
		t.Fatal(err)
	}
	if !p.FullAudit(Green) {
		t.Error("full_audit_from = GREEN: FullAudit(GREEN) = false, want true")
	}
}

func TestInheritedLimitsTighten(t *testing.T) {
	p, err := Parse([]byte("version = 1\n[limits.yellow]\nper_minute = 4\n[agent.a.limits.green]\nper_minute = 2\nburst = 1\n"), "t.toml")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		agent string
		state State
		want  Limit
	}{
		{"x", Yellow, Limit{PerMinute: 4}},
		{"x", Orange, Limit{PerMinute: 4, Burst: 4}},
		{"a", Yellow, Limit{PerMinute: 2, Burst: 1}},
		{"a", Orange, Limit{PerMinute: 2, Burst: 1}},
	}
	for _, tt := range tests {
		if got := p.RateLimit(tt.agent, tt.state); got != tt.want {
			t.Errorf("RateLimit(%q, %v) = %+v, want %+v", tt.agent, tt.state, got, tt.want)
		}
	}
}

func TestLimiterRetryAfterIsWhenTheNextRequestGoes(t *testing.T) {
	var lim Limiter
	now := time.Unix(1e9, 0)
	l := Limit{PerMinute: 60, Burst: 1}
	if got := lim.RetryAfter(now, l); got != 0 {
		t.Fatalf("fresh limiter: RetryAfter = %v, want 0", got)
	}
	if !lim.Allow(now, l) || lim.Allow(now, l) {
		t.Fatal("burst of 1: want the first request through and the second refused")
	}
	if got := lim.RetryAfter(now, l); got != time.Second {
		t.Fatalf("RetryAfter at once = %v, want 1s (60/min)", got)
	}
	if got := lim.RetryAfter(now.Add(400*time.Millisecond), l); got != 600*time.Millisecond {
		t.Fatalf("RetryAfter after 400ms = %v, want 600ms", got)
	}
	at := now.Add(lim.RetryAfter(now, l))
	if !lim.Allow(at, l) {
		t.Fatal("refused at the time RetryAfter named")
	}
	if got := lim.RetryAfter(now, Limit{}); got != 0 {
		t.Fatalf("unlimited: RetryAfter = %v, want 0", got)
	}
}
