package daemon

import (
	"context"
	"errors"
	"log"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/tokfence/tokfence/capability"
	"github.com/tokfence/tokfence/daemon/api"
	"github.com/tokfence/tokfence/daemon/audit"
	"github.com/tokfence/tokfence/daemon/localsock"
	"github.com/tokfence/tokfence/policy"
)

// requestRecord follows one proxied request from arrival to the last byte
// of its response and becomes its audit records. Fields are written by the
// handler goroutine, and by the response body reader, which ReverseProxy
// drives from the same goroutine before ServeHTTP returns.
type requestRecord struct {
	audit.Record
	start time.Time
	// api is the API of the route's provider, whose error shape fail
	// writes; apiOpenAI until the provider is known.
	api     string
	replied bool
	// bodyRead is set once readBody has consumed the request body.
	bodyRead bool
	// hits counts the request's sensor hits (see maxAuditedHits).
	hits    int
	metered bool
	// relay is the request's WebSocket, once the upstream has switched.
	relay *wsRelay
	// pol is the policy in force when the request arrived: every check
	// and every risk event of the request is judged by it, even if a
	// reload lands meanwhile.
	pol *policy.Policy
}

func (d *Daemon) newRecord(r *http.Request) *requestRecord {
	rec := &requestRecord{start: d.clock(), api: apiOpenAI, pol: d.policy()}
	rec.Event = audit.EventRequest
	rec.Method = r.Method
	if p, ok := localsock.PeerFrom(r.Context()); ok {
		if p.UID >= 0 {
			uid := p.UID
			rec.PeerUID = &uid
		}
		rec.PeerPID, rec.PeerExe = p.PID, p.Exe
		rec.Detail = map[string]string{"transport": p.Transport}
	}
	return rec
}

// fail writes the error reply, in the shape of the provider's API, and
// notes it in the record.
func (rec *requestRecord) fail(w http.ResponseWriter, status int, typ, msg string) {
	rec.failErr(w, &api.Error{Status: status, Type: typ, Message: msg})
}

func (rec *requestRecord) failErr(w http.ResponseWriter, e *api.Error) {
	rec.Status, rec.Error = e.Status, e.Message
	if rec.replied {
		return
	}
	rec.replied = true
	if !rec.bodyRead {
		// Refused before its body was read: close rather than let
		// net/http drain up to 256 KiB of it, with no deadline, to keep
		// the connection (a peer sending a byte a minute held one open,
		// and a goroutine, for ever).
		w.Header().Set("Connection", "close")
		_ = http.NewResponseController(w).SetReadDeadline(time.Now())
	}
	writeProviderError(w, rec.api, e)
}

func (rec *requestRecord) bindSession(c *capability.Claims, s *capability.Session) {
	rec.Session, rec.Agent, rec.JTI = s.ID, s.Agent, c.ID
}

// finishRecord writes the request's summary to the audit trail.
func (d *Daemon) finishRecord(rec *requestRecord) {
	if rec.relay != nil {
		rec.relay.finish() // its counts go into the record
		defer d.relays.remove(rec.relay)
	}
	rec.LatencyMS = float64(d.clock().Sub(rec.start).Microseconds()) / 1000
	if rec.hits > 0 {
		if rec.Detail == nil {
			rec.Detail = map[string]string{}
		}
		rec.Detail["sensor_hits"] = strconv.Itoa(rec.hits)
	}
	d.meterResponse(rec)
	r := rec.Record
	r.Event = audit.EventResponse
	// The request's own record was committed before it went upstream;
	// this one need not hold the connection's next request for an fsync.
	if _, err := d.appendAuditAsync(r); err != nil {
		d.log.Error("audit write failed; refusing requests until it recovers", "err", err)
	}
	if d.log.Enabled(context.Background(), slog.LevelDebug) { // spare boxing the arguments on every request
		d.log.Debug("request", "session", rec.Session, "agent", rec.Agent, "provider", rec.Provider,
			"model", rec.Model, "method", rec.Method, "path", rec.Path, "status", rec.Status, "latency_ms", rec.LatencyMS)
	}
}

// auditSink holds the daemon's audit trail.
type auditSink struct {
	mu  sync.Mutex // guards log replacement (tests swap it)
	log *audit.Log
}

// appendAudit writes r. It is the only path to the trail; a caller that
// is about to act on something (forward a request, grant a token) refuses
// to act when it fails.
func (d *Daemon) appendAudit(r audit.Record) (audit.Record, error) {
	l, err := d.auditLog()
	if err != nil {
		return r, err
	}
	return l.Append(r)
}

// appendAuditAsync writes r without waiting for it to be durable (see
// audit.Log.AppendAsync): for records nothing is acted on because of.
func (d *Daemon) appendAuditAsync(r audit.Record) (audit.Record, error) {
	l, err := d.auditLog()
	if err != nil {
		return r, err
	}
	return l.AppendAsync(r)
}

// auditLog returns the open trail.
func (d *Daemon) auditLog() (*audit.Log, error) {
	d.audit.mu.Lock()
	l := d.audit.log
	d.audit.mu.Unlock()
	if l == nil {
		return nil, errors.New("audit trail not open")
	}
	return l, nil
}

// observe feeds ev to the session's risk machine, records the result, and
// kills the session when it reaches RED.
// A request's events are judged by the policy its record holds, the one
// in force when it arrived.
func (d *Daemon) observe(st *session, ev policy.Event, rec *requestRecord) policy.Decision {
	pol := d.policy()
	if rec != nil && rec.pol != nil {
		pol = rec.pol
	}
	dec, from, to, changed := st.risk.Observe(pol, st.Agent, ev)
	if !changed {
		return dec
	}
	r := audit.Record{Event: audit.EventRiskChange, Session: st.ID, Agent: st.Agent,
		From: from.String(), To: to.String(), Reason: dec.Reason, Rule: ev.Rule}
	if rec != nil {
		r.Provider, r.Path = rec.Provider, rec.Path
	}
	d.appendAudit(r)
	d.log.Warn("session risk rose", "session", st.ID, "agent", st.Agent, "from", from, "to", to, "reason", dec.Reason)
	if to == policy.Red {
		if _, err := d.endSession(st.ID, "risk RED: "+dec.Reason); err != nil {
			d.log.Error("revoke RED session", "session", st.ID, "err", err)
		}
	}
	return dec
}

func slogLogger(l *slog.Logger) *log.Logger { return slog.NewLogLogger(l.Handler(), slog.LevelWarn) }
