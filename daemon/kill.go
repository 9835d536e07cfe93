package daemon

import (
	"fmt"

	"github.com/tokfence/tokfence/capability"
	"github.com/tokfence/tokfence/daemon/api"
	"github.com/tokfence/tokfence/daemon/proc"
)

// kill revokes what req names. The revocation is on disk before any
// in-flight request is cut and before kill returns, so a kill survives a
// crash the instant it is acknowledged. A session killed already is not
// killed again: naming it is errUnknownSession, and nothing is recorded.
func (d *Daemon) kill(req api.KillRequest) (api.KillResult, error) {
	switch {
	case req.All:
		return d.endAllSessions()
	case req.Agent != "":
		res := api.KillResult{Killed: []string{}}
		for _, sid := range d.sessionsOf(req.Agent) {
			ended, err := d.endSession(sid, "kill --agent")
			if err != nil {
				return res, err
			}
			if ended {
				res.Killed = append(res.Killed, sid)
			}
		}
		if len(res.Killed) == 0 {
			return res, fmt.Errorf("agent %q has no live session: %w", req.Agent, errUnknownSession)
		}
		return res, nil
	default:
		if !sessionIDRE.MatchString(req.Session) {
			return api.KillResult{}, fmt.Errorf("session id %q: want 32 hex characters: %w", req.Session, errUnknownSession)
		}
		ended, err := d.endSession(req.Session, "kill")
		if err != nil {
			return api.KillResult{}, err
		}
		if !ended {
			why := "not live: never issued here, expired, or killed"
			if d.revs.Revoked(&capability.Claims{SID: req.Session, Epoch: d.revs.Epoch()}) != nil {
				why = "already killed"
			}
			return api.KillResult{}, fmt.Errorf("session %s is %s: %w", req.Session, why, errUnknownSession)
		}
		return api.KillResult{Killed: []string{req.Session}}, nil
	}
}

// bindToProcess kills sess when process pid exits. The watcher goroutine
// is owned by the session: it ends when the process exits, the session
// ends, or the daemon stops.
func (d *Daemon) bindToProcess(sess *capability.Session, pid int) {
	d.agents.Add(pid, sess.ID)
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		defer d.agents.Remove(pid)
		if proc.WaitExit(d.runCtx, sess.Context(), pid) {
			if _, err := d.endSession(sess.ID, fmt.Sprintf("bound process %d exited", pid)); err != nil {
				d.log.Error("kill session of exited process", "session", sess.ID, "err", err)
			}
		}
	}()
}
