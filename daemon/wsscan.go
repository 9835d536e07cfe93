package daemon

import (
	"bytes"
	"cmp"

	"github.com/tokfence/tokfence/daemon/audit"
	"github.com/tokfence/tokfence/daemon/meter"
	"github.com/tokfence/tokfence/sensor"
)

// What the relay does with each message it carries: the sensors, with the
// same decisions as for a body (sensorHit), and the usage the Responses
// API reports in its events.

// scan runs one message through its direction's sensor stream. It returns
// the bytes to forward, all of them (the stream is flushed: a message
// goes out whole), and the class or rule of the first hit whose decision
// blocks, or "".
func (r *wsRelay) scan(s *sensor.Stream, msg []byte, buf *[]byte) ([]byte, string) {
	fwd, hits := s.Write(msg)
	out := append((*buf)[:0], fwd...)
	blocked := r.hits(hits)
	out = append(out, s.Flush()...)
	*buf = out
	if cap(out) > keepMessageBuf {
		*buf = nil
	}
	return out, blocked
}

// scanControl scans a control frame's payload on its own, as it belongs to
// no message. A payload that redaction lengthened is cut back to a
// control frame's size.
func (r *wsRelay) scanControl(dir sensor.Direction, p []byte) ([]byte, string) {
	s := r.d.sensors.Load().NewStream(dir, "")
	defer s.Release()
	fwd, hits := s.Write(p)
	out := append([]byte(nil), fwd...)
	blocked := r.hits(hits)
	fwd, hits = s.Close()
	out = append(out, fwd...)
	blocked = cmp.Or(blocked, r.hits(hits))
	return out[:min(len(out), maxControl)], blocked
}

// scanClose checks a close frame's code and scans its reason.
func (r *wsRelay) scanClose(dir sensor.Direction, p []byte) (code int, reason, blocked string, err error) {
	if code, err = closeCode(p); err != nil {
		return 0, "", "", err
	}
	out, blocked := r.scanControl(dir, p[min(2, len(p)):])
	return code, string(out), blocked, nil
}

// hits audits each hit and applies its decision (see sensorHit). It
// returns the class (or, for a format rule, the rule) of the first that
// blocks.
func (r *wsRelay) hits(hs []sensor.Hit) string {
	blocked := ""
	for _, h := range hs {
		if dec := r.d.sensorHit(r.f, h); dec.Block && blocked == "" {
			blocked = h.Rule
			if h.Class != sensor.ClassFormat {
				blocked = string(h.Class)
			}
		}
	}
	return blocked
}

// block ends the relay for a message that carries a secret.
func (r *wsRelay) block(what, blocked string) error {
	r.end(closePolicy, what+" blocked: it carries a secret ("+blocked+")")
	return errStop
}

// meter counts the usage that a Responses API event reports (in
// response.completed, at the end of each response) as it arrives, so that
// the next response.create on the connection meets the budget with it.
func (r *wsRelay) meter(msg []byte) {
	if !bytes.Contains(msg, []byte("sage")) {
		return
	}
	var t meter.Tap
	t.Merge(msg)
	if u := t.Result(); u != nil {
		r.mu.Lock()
		model := r.model
		r.mu.Unlock()
		r.account(model, *u)
	}
}

// account prices and counts one response's usage.
func (r *wsRelay) account(model string, u audit.Usage) {
	d, rec := r.d, r.f.rec
	var micro int64
	now := d.clock()
	p, ok := d.prices.Lookup(r.f.p.Name, model)
	if ok {
		micro = p.CostMicroUSD(u, now)
		r.price = p.Ref
	}
	d.meter.Add(rec.Session, rec.Agent, now, u.InputTokens+u.OutputTokens, micro, !ok)
	r.usage.InputTokens += u.InputTokens
	r.usage.OutputTokens += u.OutputTokens
	r.usage.CachedTokens += u.CachedTokens
	r.usage.Estimated = r.usage.Estimated || u.Estimated
	r.cost += micro
	r.unpriced = r.unpriced || !ok
	r.usageSeen++
}
