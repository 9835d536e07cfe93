package daemon

import (
	"strconv"

	"github.com/tokfence/tokfence/capability"
	"github.com/tokfence/tokfence/daemon/audit"
)

// checkBudget refuses a request that would start past the session's or
// the agent's limits (meter.Check), with the agent's budget from the
// config ("*" for agents without their own).
func (d *Daemon) checkBudget(c *capability.Claims, provider, model string) error {
	b, ok := d.cfg.Budgets[c.Subject]
	if !ok {
		b = d.cfg.Budgets["*"]
	}
	return d.meter.Check(c, provider, model, b, d.prices, d.clock())
}

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
	p, ok := d.prices.Lookup(rec.Provider, rec.Model)
	if ok {
		micro = p.CostMicroUSD(*rec.Usage, rec.start)
		rec.Detail["cost_micro_usd"] = strconv.FormatInt(micro, 10)
		rec.Detail["price"] = p.Ref
	} else {
		rec.Detail["unpriced"] = "true"
	}
	d.meter.Add(rec.Session, rec.Agent, rec.start, rec.Usage.InputTokens+rec.Usage.OutputTokens, micro, !ok)
}
