package meter

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

// Tally is what a session or an agent has used.
type Tally struct {
	Requests int64 `json:"requests"`
	Tokens   int64 `json:"tokens"`
	MicroUSD int64 `json:"micro_usd"`
	Unpriced int64 `json:"unpriced_requests,omitempty"` // requests whose model has no price
}

// Meter counts usage per session and per agent per UTC day and month. It
// is rebuilt from the audit trail at start (every response record carries
// its usage and cost), so the counters survive a restart without a state
// file of their own.
type Meter struct {
	mu       sync.Mutex
	sessions map[string]*Tally
	days     map[period]*Tally
	months   map[period]*Tally // day 0
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

// New returns an empty Meter.
func New() *Meter {
	return &Meter{sessions: map[string]*Tally{}, days: map[period]*Tally{}, months: map[period]*Tally{}}
}

func bump[K comparable](m map[K]*Tally, k K, tokens, micro int64, unpriced bool) {
	t := m[k]
	if t == nil {
		t = &Tally{}
		m[k] = t
	}
	t.Requests++
	t.Tokens += tokens
	t.MicroUSD += micro
	if unpriced {
		t.Unpriced++
	}
}

// Add counts a request of session sid and agent made at at.
func (m *Meter) Add(sid, agent string, at time.Time, tokens, micro int64, unpriced bool) {
	day, month := dayOf(agent, at), monthOf(agent, at)
	m.mu.Lock()
	defer m.mu.Unlock()
	bump(m.sessions, sid, tokens, micro, unpriced)
	bump(m.days, day, tokens, micro, unpriced)
	bump(m.months, month, tokens, micro, unpriced)
}

func get[K comparable](m *Meter, table map[K]*Tally, k K) Tally {
	m.mu.Lock()
	defer m.mu.Unlock()
	if t := table[k]; t != nil {
		return *t
	}
	return Tally{}
}

// Session returns session sid's tally so far.
func (m *Meter) Session(sid string) Tally { return get(m, m.sessions, sid) }

// Prune forgets the tallies nothing can ask for any more: those of
// sessions known reports unknown (ended, or never granted here), of days
// before now's and of months before now's. A budget only ever reads the
// current day and month, so a meter's size follows the sessions and
// agents of now, not of the daemon's whole run.
func (m *Meter) Prune(now time.Time, known func(sid string) bool) {
	y, mo, d := now.UTC().Date()
	m.mu.Lock()
	defer m.mu.Unlock()
	for sid := range m.sessions {
		if !known(sid) {
			delete(m.sessions, sid)
		}
	}
	for p := range m.days {
		if p.year != y || p.month != mo || p.day != d {
			delete(m.days, p)
		}
	}
	for p := range m.months {
		if p.year != y || p.month != mo {
			delete(m.months, p)
		}
	}
}

// Rebuild replays this month's response records from the audit trail.
func (m *Meter) Rebuild(dir string, now time.Time) error {
	now = now.UTC()
	start := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)
	return ReadSpend(dir, audit.Filter{Since: start}, func(r audit.Record, c Cost) error {
		if r.Session != "" {
			m.Add(r.Session, r.Agent, r.Time, r.Usage.InputTokens+r.Usage.OutputTokens, c.MicroUSD, c.Unpriced)
		}
		return nil
	})
}

// Cost is what a response record says its request cost.
type Cost struct {
	MicroUSD int64
	Unpriced bool // no price was known: its tokens count, its cost is unknown
}

// ReadSpend calls fn with each response record in the trail at dir that
// matches f and carries usage, and its cost: the one reader of usage from
// the trail, for the meter's rebuild and for `tokfence usage`. f's Event
// is ignored.
func ReadSpend(dir string, f audit.Filter, fn func(audit.Record, Cost) error) error {
	f.Event = audit.EventResponse
	return audit.Read(dir, f, func(r audit.Record) error {
		if r.Usage == nil {
			return nil
		}
		micro, _ := strconv.ParseInt(r.Detail["cost_micro_usd"], 10, 64)
		return fn(r, Cost{MicroUSD: micro, Unpriced: r.Detail["unpriced"] == "true"})
	})
}

// ErrBudget is the 429 for a request that would start past a limit.
// ErrBudget and ErrUnpriced refuse a request that no retry can fix: a
// limit used up, or a spend limit that cannot be enforced on a model with
// no price.
var (
	ErrBudget   = errors.New("limit reached")
	ErrUnpriced = errors.New("spend limit unenforceable")
)

// Check refuses a request that would start past the session's token
// or spend limit or the agent's daily or monthly budget b (the zero Budget: none). Requests already
// in flight are not counted until they finish, so concurrent requests can
// overshoot a limit by at most what those in-flight requests use.
func (m *Meter) Check(c *capability.Claims, provider, model string, b Budget, prices *Table, now time.Time) error {
	s := m.Session(c.SID)
	if max := c.Scope.MaxTokens; max > 0 && s.Tokens >= max {
		return fmt.Errorf("%w: the session's --max-tokens %d is used up (%d)", ErrBudget, max, s.Tokens)
	}
	if max := c.Scope.MaxSpendMicroUSD; max > 0 {
		if s.MicroUSD >= max {
			return fmt.Errorf("%w: the session's --max-spend $%.2f is used up ($%.4f)", ErrBudget, USD(max), USD(s.MicroUSD))
		}
		if _, ok := prices.Lookup(provider, model); !ok {
			return fmt.Errorf("%w: %q has no price, so the session's --max-spend cannot be enforced; add it under [pricing] in the config or point pricing_file at a newer table", ErrUnpriced, model)
		}
	}
	if b == (Budget{}) {
		return nil
	}
	day := get(m, m.days, dayOf(c.Subject, now))
	month := get(m, m.months, monthOf(c.Subject, now))
	switch {
	case b.DailyUSD > 0 && USD(day.MicroUSD) >= b.DailyUSD:
		return fmt.Errorf("%w: agent %s's daily budget $%.2f is used up", ErrBudget, c.Subject, b.DailyUSD)
	case b.MonthlyUSD > 0 && USD(month.MicroUSD) >= b.MonthlyUSD:
		return fmt.Errorf("%w: agent %s's monthly budget $%.2f is used up", ErrBudget, c.Subject, b.MonthlyUSD)
	case b.DailyTokens > 0 && day.Tokens >= b.DailyTokens:
		return fmt.Errorf("%w: agent %s's daily token budget %d is used up", ErrBudget, c.Subject, b.DailyTokens)
	case b.MonthlyTokens > 0 && month.Tokens >= b.MonthlyTokens:
		return fmt.Errorf("%w: agent %s's monthly token budget %d is used up", ErrBudget, c.Subject, b.MonthlyTokens)
	}
	return nil
}

func USD(micro int64) float64 { return float64(micro) / 1e6 }
