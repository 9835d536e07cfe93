package daemon

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/tokfence/tokfence/capability"
	"github.com/tokfence/tokfence/daemon/audit"
	"github.com/tokfence/tokfence/policy"
	"github.com/tokfence/tokfence/sensor"
)

// hintError is an error with a fix for the user; the CLI prints the hint.
type hintError struct {
	err  error
	hint string
}

func (e *hintError) Error() string { return e.err.Error() }
func (e *hintError) Unwrap() error { return e.err }

// Hint returns the fix.
func (e *hintError) Hint() string { return e.hint }

// WithHint returns err carrying a hint, the fix the CLI prints as
// "tokfence: hint: ...".
func WithHint(err error, hint string) error { return &hintError{err: err, hint: hint} }

func withHintf(err error, format string, args ...any) error {
	return WithHint(err, fmt.Sprintf(format, args...))
}

// setupPolicy loads the policy file, if one is configured. A bad file at
// start is an error: the daemon never runs on a policy it could not read.
func (d *Daemon) setupPolicy() error {
	if d.cfg.PolicyFile == "" {
		return nil
	}
	w, err := policy.NewWatcher(d.cfg.PolicyFile, d.onPolicyReload)
	if err != nil {
		return fmt.Errorf("policy: %w", err)
	}
	d.policyW = w
	return nil
}

// onPolicyReload reports a reload in the log and the audit trail. On error
// the watcher has kept the last good policy.
func (d *Daemon) onPolicyReload(p *policy.Policy, err error) {
	rec := audit.Record{Event: audit.EventPolicyReload}
	if err != nil {
		rec.Error = err.Error()
		d.log.Error("policy reload failed; keeping the last good policy", "err", err)
	} else {
		rec.Detail = map[string]string{"source": p.Source(), "sha256": p.Digest()}
		d.log.Info("policy reloaded", "source", p.Source(), "sha256", p.Digest())
	}
	d.appendAudit(rec)
}

// policyError returns the last reload error, or "".
func (d *Daemon) policyError() string {
	if d.policyW == nil {
		return ""
	}
	if err := d.policyW.LastError(); err != nil {
		return err.Error()
	}
	return ""
}

// startBackground starts the daemon's long-lived goroutines; each stops
// when the run context ends, and serve waits for them.
func (d *Daemon) startBackground(ctx context.Context) {
	if d.policyW != nil {
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			if err := d.policyW.Run(d.runCtx); err != nil {
				d.log.Error("policy watcher stopped", "err", err)
			}
		}()
	}
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		t := time.NewTicker(30 * time.Second) // expiry housekeeping; correctness never waits on it
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				d.housekeep()
			}
		}
	}()
}

// housekeep drops expired sessions, the risk state of sessions no longer
// live, the sensor entries of expired tokens and of sessions no longer
// live, and expired revocations.
func (d *Daemon) housekeep() {
	d.sessions.Prune()
	// Liveness is asked of the registry at each step: a session granted
	// meanwhile is in the registry before it is in the table or the book.
	live := func(sid string) bool { _, ok := d.sessions.Get(sid); return ok }
	d.live.forget(live)
	d.book.sweep(d.clock(), live)
	if err := d.revs.Prune(); err != nil {
		d.log.Error("prune revocations", "err", err)
	}
}

// canaryEnv builds the session's decoy credentials, one per configured
// env name, shaped like the credential that name suggests.
func canaryEnv(names []string) (map[string]string, error) {
	out := make(map[string]string, len(names))
	for _, n := range names {
		v, err := newCanary(n)
		if err != nil {
			return nil, err
		}
		out[n] = v
	}
	return out, nil
}

// registerSession puts the session's token and canaries in the sensor
// book, so that any sighting of them in a body is caught. They stay while
// the session lives: killSession and housekeep take them out when it is
// killed or expires (a token, too, once it has expired: a renewed session
// has a newer one). A canary is not watched for past its session's end:
// by then the session can no longer be revoked for it, and keeping every
// dead session's decoys made the book grow with every grant.
func (d *Daemon) registerSession(token string, c *capability.Claims, canaries map[string]string) {
	// A token is watched for by its signature: it is unique to the token,
	// a token is useless without it, and at 86 characters it keeps the
	// book small where whole tokens (~600 bytes, ~1200 in hex) would not.
	sig := token[strings.LastIndexByte(token, '.')+1:]
	add := map[string]bookEntry{
		"tok:" + c.ID: {secret: sensor.Secret{ID: c.ID, Class: sensor.ClassToken, Value: []byte(sig)},
			expires: c.ExpiresAt.Time.Add(time.Minute), session: c.SID},
	}
	for name, v := range canaries {
		add["canary:"+c.SID+":"+name] = bookEntry{secret: sensor.Secret{ID: c.SID + ":" + name, Class: sensor.ClassCanary, Value: []byte(v)},
			session: c.SID}
	}
	d.bookSet(add, "")
}
