package daemon

import (
	"errors"
	"fmt"
	"regexp"
	"sync"
	"time"

	"github.com/tokfence/tokfence/capability"
	"github.com/tokfence/tokfence/daemon/api"
	"github.com/tokfence/tokfence/daemon/audit"
	"github.com/tokfence/tokfence/daemon/localsock"
	"github.com/tokfence/tokfence/daemon/proc"
	"github.com/tokfence/tokfence/policy"
)

// A session's state lives here and only here. The capability.Session is
// its identity, scope, expiry, request count and context; session adds
// what the daemon decides with (risk machine, rate limiter); the table
// keeps the persisted grant record beside it, and opening and ending a
// session are the only places that touch the sensor book, the grant
// record, the revocation list and the audit trail for it. So:
//
//   - grant is mint → openSession → reply; a failure after the session
//     opened ends it again through endSession, with nothing left behind;
//   - kill is endSession, one call: the revocation and the grant record's
//     removal are on disk before the session's context is cancelled, and a
//     session already ended is reported as such and records nothing.

var sessionIDRE = regexp.MustCompile(`^[0-9a-f]{32}$`)

// session is one live session's daemon-side state.
type session struct {
	*capability.Session
	risk *policy.Risk
	lim  policy.Limiter // safe for concurrent use on its own
}

// sessionTable is the daemon's sessions: the live ones by id, and the
// persisted grant records of those that predate a restart. ends serializes
// ends so that a session is ended once.
type sessionTable struct {
	mu     sync.Mutex
	m      map[string]*session
	grants *grantStore
	ends   sync.Mutex
}

// of returns the daemon state of s, creating it (GREEN) on first sight:
// at grant, or at a restored session's first request after a restart.
func (t *sessionTable) of(s *capability.Session, clock func() time.Time) *session {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.m == nil {
		t.m = map[string]*session{}
	}
	st, ok := t.m[s.ID]
	if !ok || st.Session != s {
		st = &session{Session: s, risk: policy.NewRisk(clock)}
		t.m[s.ID] = st
	}
	return st
}

// lookup returns the state of live session sid.
func (t *sessionTable) lookup(sid string) (*session, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	st, ok := t.m[sid]
	return st, ok
}

// drop forgets the state of session sid.
func (t *sessionTable) drop(sid string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.m, sid)
}

// forget drops the states of sessions live reports dead.
func (t *sessionTable) forget(live func(sid string) bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for id := range t.m {
		if !live(id) {
			delete(t.m, id)
		}
	}
}

// openSession registers a freshly minted session and everything it owns:
// its state, its token and canaries in the sensor book, its grant record
// on the trail and on disk. When it returns an error the session has been
// ended again and the caller only reports it.
func (d *Daemon) openSession(token string, c *capability.Claims, peer localsock.Peer, canaries map[string]string, detail map[string]string, fence string) (*session, error) {
	cs := d.sessions.Add(c, capability.PeerInfo{UID: peer.UID, PID: peer.PID, Exe: peer.Exe})
	st := d.live.of(cs, d.clock)
	d.registerSession(token, c, canaries)
	uid := peer.UID
	if _, err := d.appendAudit(audit.Record{Event: audit.EventGrant, Session: c.SID, Agent: c.Subject, JTI: c.ID,
		PeerUID: &uid, PeerPID: peer.PID, PeerExe: peer.Exe, Detail: detail}); err != nil {
		d.endSession(c.SID, "grant could not be audited")
		return nil, fmt.Errorf("audit trail unwritable; refusing to grant: %w", err)
	}
	if err := d.live.grants.add(c.SID, grantRecord{Agent: c.Subject, Expires: c.ExpiresAt.Time, Fence: fence}, d.clock()); err != nil {
		// Without its record a restart would forget the session for
		// `kill --agent` and `sessions`: refuse rather than half-grant.
		d.endSession(c.SID, "grant could not be persisted")
		return nil, fmt.Errorf("persist grant: %w", err)
	}
	return st, nil
}

// errSessionEnded is returned by endSession's callers for a session that
// was killed already: reported, never recorded twice.
var errSessionEnded = errors.New("already killed")

// endSession kills session sid, live or known from its grant record: the
// revocation (until the latest expiry of any of its tokens) and the
// removal of its grant record are persisted, then its context is
// cancelled (in-flight requests and streams end with ErrRevoked), its
// state, token and canaries dropped and the kill recorded. It reports
// false, and does nothing, for a session that is not live and has no
// grant record: one already killed, expired, or never issued here.
func (d *Daemon) endSession(sid, why string) (bool, error) {
	d.live.ends.Lock()
	defer d.live.ends.Unlock()
	var until time.Time
	s, live := d.sessions.Get(sid)
	if live {
		until = s.Expires()
	}
	// A renewal may have issued a token that outlives the one this run
	// knows of (after a restart, the session was restored from whichever
	// token came first): the grant record holds the latest expiry.
	g, recorded := d.live.grants.get(sid)
	if recorded && g.Expires.After(until) {
		until = g.Expires
	}
	if !live && (!recorded || !g.Expires.After(d.clock())) {
		return false, nil
	}
	if err := d.revs.RevokeSession(sid, until.Add(time.Minute)); err != nil {
		return false, fmt.Errorf("persist revocation of %s: %w", sid, err)
	}
	if err := d.live.grants.remove(sid, d.clock()); err != nil {
		// The revocation is on disk, which is what a restart obeys; the
		// stale record only lists a dead session until it expires.
		d.log.Error("drop grant record of killed session", "session", sid, "err", err)
	}
	d.sessions.Kill(sid)
	d.live.drop(sid)
	d.book.dropSession(sid) // its token is dead and its canaries can revoke nothing
	d.appendAudit(audit.Record{Event: audit.EventKill, Session: sid, Reason: why})
	d.log.Warn("killed session", "session", sid, "reason", why)
	return true, nil
}

// endAllSessions is kill --all: the epoch, persisted first, kills every
// token minted so far, restored or not; then every live session ends and
// every grant record goes.
func (d *Daemon) endAllSessions() (api.KillResult, error) {
	d.live.ends.Lock()
	defer d.live.ends.Unlock()
	epoch, err := d.revs.BumpEpoch()
	if err != nil {
		return api.KillResult{}, fmt.Errorf("persist epoch: %w", err)
	}
	res := api.KillResult{Killed: []string{}, Epoch: epoch}
	if err := d.live.grants.clear(); err != nil {
		d.log.Error("drop grant records after kill --all", "err", err)
	}
	for _, s := range d.sessions.KillAll() {
		d.book.dropSession(s.ID)
		res.Killed = append(res.Killed, s.ID)
	}
	d.live.forget(func(string) bool { return false })
	d.appendAudit(audit.Record{Event: audit.EventKill, Reason: "kill --all", Detail: map[string]string{"epoch": fmt.Sprint(epoch)}})
	d.log.Warn("killed all sessions", "epoch", epoch, "count", len(res.Killed))
	return res, nil
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

// sessionsOf returns the ids of agent's sessions: live in this run, or
// known from their grant records (granted before a restart, unused since).
func (d *Daemon) sessionsOf(agent string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range d.sessions.List() {
		if s.Agent == agent {
			seen[s.ID] = true
			out = append(out, s.ID)
		}
	}
	for sid, g := range d.live.grants.snapshot(d.clock()) {
		if g.Agent == agent && !seen[sid] {
			out = append(out, sid)
		}
	}
	return out
}
