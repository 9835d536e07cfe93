package daemon

import (
	"fmt"

	"github.com/tokfence/tokfence/daemon/audit"
	"github.com/tokfence/tokfence/policy"
)

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
