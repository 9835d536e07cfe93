package daemon

import (
	"context"
	"time"
)

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
	// A session restored from its grant record after a restart is not in
	// the registry until its first request, and its spend so far must
	// still count against it then.
	d.meter.Prune(d.clock(), func(sid string) bool {
		_, recorded := d.live.grants.get(sid)
		return recorded || live(sid)
	})
	if err := d.revs.Prune(); err != nil {
		d.log.Error("prune revocations", "err", err)
	}
}
