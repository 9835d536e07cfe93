package daemon

import (
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/tokfence/tokfence/capability"
	"github.com/tokfence/tokfence/daemon/audit"
)

// Budget caps what one agent may spend across all its sessions, per UTC
// day and month. Zero means no cap. The agent "*" applies to every agent
// without its own entry.
type Budget struct {
	DailyUSD      float64 `toml:"daily_usd"`
	MonthlyUSD    float64 `toml:"monthly_usd"`
	DailyTokens   int64   `toml:"daily_tokens"`
	MonthlyTokens int64   `toml:"monthly_tokens"`
}

// tally is what a session or an agent has used.
type tally struct {
	Requests int64 `json:"requests"`
	Tokens   int64 `json:"tokens"`
	MicroUSD int64 `json:"micro_usd"`
	Unpriced int64 `json:"unpriced_requests,omitempty"` // requests whose model has no price
}

// meter counts usage per session and per agent per UTC day and month. It
// is rebuilt from the audit trail at start (every response record carries
// its usage and cost), so the counters survive a restart without a state
// file of their own.
type meter struct {
	mu       sync.Mutex
	sessions map[string]*tally
	days     map[period]*tally
	months   map[period]*tally // day 0
}

// period names an agent's UTC day, or (day 0) its UTC month. A struct, not
// a formatted string: a key is built on every request.
type period struct {
	agent string
	year  int
	month time.Month
	day   int
}

func dayOf(agent string, t time.Time) period {
	y, m, d := t.UTC().Date()
	return period{agent, y, m, d}
}

func monthOf(agent string, t time.Time) period {
	y, m, _ := t.UTC().Date()
	return period{agent, y, m, 0}
}

func newMeter() *meter {
	return &meter{sessions: map[string]*tally{}, days: map[period]*tally{}, months: map[period]*tally{}}
}

func bump[K comparable](m map[K]*tally, k K, tokens, micro int64, unpriced bool) {
	t := m[k]
	if t == nil {
		t = &tally{}
		m[k] = t
	}
	t.Requests++
	t.Tokens += tokens
	t.MicroUSD += micro
	if unpriced {
		t.Unpriced++
	}
}

func (m *meter) add(sid, agent string, at time.Time, tokens, micro int64, unpriced bool) {
	day, month := dayOf(agent, at), monthOf(agent, at)
	m.mu.Lock()
	defer m.mu.Unlock()
	bump(m.sessions, sid, tokens, micro, unpriced)
	bump(m.days, day, tokens, micro, unpriced)
	bump(m.months, month, tokens, micro, unpriced)
}

func get[K comparable](m *meter, table map[K]*tally, k K) tally {
	m.mu.Lock()
	defer m.mu.Unlock()
	if t := table[k]; t != nil {
		return *t
	}
	return tally{}
}

func (m *meter) session(sid string) tally { return get(m, m.sessions, sid) }

// rebuild replays this month's response records from the audit trail.
func (m *meter) rebuild(dir string, now time.Time) error {
	now = now.UTC()
	start := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)
	return audit.Read(dir, audit.Filter{Event: audit.EventResponse, Since: start}, func(r audit.Record) error {
		if r.Session == "" || r.Usage == nil {
			return nil
		}
		micro, _ := strconv.ParseInt(r.Detail["cost_micro_usd"], 10, 64)
		m.add(r.Session, r.Agent, r.Time, r.Usage.InputTokens+r.Usage.OutputTokens, micro, r.Detail["unpriced"] == "true")
		return nil
	})
}

// errBudget is the 429 for a request that would start past a limit.
// errBudget and errUnpriced refuse a request that no retry can fix: a
// limit used up, or a spend limit that cannot be enforced on a model with
// no price.
var (
	errBudget   = errors.New("limit reached")
	errUnpriced = errors.New("spend limit unenforceable")
)

// checkBudget refuses a request that would start past the session's token
// or spend limit or the agent's daily or monthly budget. Requests already
// in flight are not counted until they finish, so concurrent requests can
// overshoot a limit by at most what those in-flight requests use.
func (d *Daemon) checkBudget(c *capability.Claims, provider, model string) error {
	s := d.meter.session(c.SID)
	if max := c.Scope.MaxTokens; max > 0 && s.Tokens >= max {
		return fmt.Errorf("%w: the session's --max-tokens %d is used up (%d)", errBudget, max, s.Tokens)
	}
	if max := c.Scope.MaxSpendMicroUSD; max > 0 {
		if s.MicroUSD >= max {
			return fmt.Errorf("%w: the session's --max-spend $%.2f is used up ($%.4f)", errBudget, usd(max), usd(s.MicroUSD))
		}
		if _, ok := d.prices.lookup(provider, model); !ok {
			return fmt.Errorf("%w: %q has no price, so the session's --max-spend cannot be enforced; add it under [pricing] in the config or point pricing_file at a newer table", errUnpriced, model)
		}
	}
	b, ok := d.cfg.Budgets[c.Subject]
	if !ok {
		b = d.cfg.Budgets["*"]
	}
	if b == (Budget{}) {
		return nil
	}
	now := d.clock()
	day := get(d.meter, d.meter.days, dayOf(c.Subject, now))
	month := get(d.meter, d.meter.months, monthOf(c.Subject, now))
	switch {
	case b.DailyUSD > 0 && usd(day.MicroUSD) >= b.DailyUSD:
		return fmt.Errorf("%w: agent %s's daily budget $%.2f is used up", errBudget, c.Subject, b.DailyUSD)
	case b.MonthlyUSD > 0 && usd(month.MicroUSD) >= b.MonthlyUSD:
		return fmt.Errorf("%w: agent %s's monthly budget $%.2f is used up", errBudget, c.Subject, b.MonthlyUSD)
	case b.DailyTokens > 0 && day.Tokens >= b.DailyTokens:
		return fmt.Errorf("%w: agent %s's daily token budget %d is used up", errBudget, c.Subject, b.DailyTokens)
	case b.MonthlyTokens > 0 && month.Tokens >= b.MonthlyTokens:
		return fmt.Errorf("%w: agent %s's monthly token budget %d is used up", errBudget, c.Subject, b.MonthlyTokens)
	}
	return nil
}

func usd(micro int64) float64 { return float64(micro) / 1e6 }

// meterResponse prices a finished request, counts it and notes the cost
// in its audit record. A reply without usage is estimated from its size
// (about four bytes a token) and marked as an estimate.
//
// It runs once per request: when the reply body ends (before its last byte
// reaches the agent, so the agent's next request already sees the count)
// or, for a reply that never ended, when the request finishes.
func (d *Daemon) meterResponse(rec *requestRecord) {
	if rec.metered || rec.Session == "" || rec.Status < 200 || rec.Status >= 300 {
		return
	}
	rec.metered = true
	if rec.Usage == nil {
		rec.Usage = &audit.Usage{InputTokens: (rec.BytesIn + 3) / 4, OutputTokens: (rec.BytesOut + 3) / 4, Estimated: true}
	}
	if rec.Detail == nil {
		rec.Detail = map[string]string{}
	}
	var micro int64
	p, ok := d.prices.lookup(rec.Provider, rec.Model)
	if ok {
		micro = p.costMicroUSD(*rec.Usage, rec.start)
		rec.Detail["cost_micro_usd"] = strconv.FormatInt(micro, 10)
		rec.Detail["price"] = p.ref
	} else {
		rec.Detail["unpriced"] = "true"
	}
	d.meter.add(rec.Session, rec.Agent, rec.start, rec.Usage.InputTokens+rec.Usage.OutputTokens, micro, !ok)
}
