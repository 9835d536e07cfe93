package daemon

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"regexp"
	"sync"
	"time"

	"github.com/tokfence/tokfence/capability"
	"github.com/tokfence/tokfence/daemon/audit"
	"github.com/tokfence/tokfence/keystore/durable"
)

var sessionIDRE = regexp.MustCompile(`^[0-9a-f]{32}$`)

// kill revokes what req names. The revocation is on disk before any
// in-flight request is cut and before kill returns, so a kill survives a
// crash the instant it is acknowledged.
func (d *Daemon) kill(req KillRequest) (KillResult, error) {
	switch {
	case req.All:
		epoch, err := d.revs.BumpEpoch()
		if err != nil {
			return KillResult{}, fmt.Errorf("persist epoch: %w", err)
		}
		res := KillResult{Killed: []string{}, Epoch: epoch}
		for _, s := range d.sessions.KillAll() {
			d.book.dropSession(s.ID)
			res.Killed = append(res.Killed, s.ID)
		}
		d.appendAudit(audit.Record{Event: audit.EventKill, Reason: "kill --all", Detail: map[string]string{"epoch": fmt.Sprint(epoch)}})
		d.log.Warn("killed all sessions", "epoch", epoch, "count", len(res.Killed))
		return res, nil
	case req.Agent != "":
		res := KillResult{Killed: []string{}}
		for sid, exp := range d.sessionsOf(req.Agent) {
			if err := d.killSession(sid, exp, "kill --agent"); err != nil {
				return res, err
			}
			res.Killed = append(res.Killed, sid)
		}
		if len(res.Killed) == 0 {
			return res, fmt.Errorf("agent %q: %w", req.Agent, errUnknownSession)
		}
		return res, nil
	default:
		if !sessionIDRE.MatchString(req.Session) {
			return KillResult{}, fmt.Errorf("session id %q: want 32 hex characters: %w", req.Session, errUnknownSession)
		}
		exp, ok := d.expiryOf(req.Session)
		if !ok {
			return KillResult{}, fmt.Errorf("session %s: %w", req.Session, errUnknownSession)
		}
		if err := d.killSession(req.Session, exp, "kill"); err != nil {
			return KillResult{}, err
		}
		return KillResult{Killed: []string{req.Session}}, nil
	}
}

// killSession persists the revocation of sid, then cancels the session's
// context so that its in-flight requests and streams end with ErrRevoked.
func (d *Daemon) killSession(sid string, until time.Time, why string) error {
	// A renewal may have issued a token that outlives the one the caller
	// knows of (after a restart, the session was restored from whichever
	// token came first): the grant record holds the latest expiry.
	if g, ok := d.grants.get(sid); ok && g.Expires.After(until) {
		until = g.Expires
	}
	if err := d.revs.RevokeSession(sid, until.Add(time.Minute)); err != nil {
		return fmt.Errorf("persist revocation of %s: %w", sid, err)
	}
	d.sessions.Kill(sid)
	d.book.dropSession(sid) // its token is dead and its canaries can revoke nothing
	d.appendAudit(audit.Record{Event: audit.EventKill, Session: sid, Reason: why})
	d.log.Warn("killed session", "session", sid, "reason", why)
	return nil
}

// sessionsOf returns the live sessions of agent with their expiry, from
// the registry and from the persisted grants (sessions granted before a
// restart that have not made a request since).
func (d *Daemon) sessionsOf(agent string) map[string]time.Time {
	out := map[string]time.Time{}
	for _, s := range d.sessions.List() {
		if s.Agent == agent {
			out[s.ID] = s.Expires()
		}
	}
	for sid, g := range d.grants.snapshot(d.clock()) {
		if g.Agent == agent {
			if _, ok := out[sid]; !ok {
				out[sid] = g.Expires
			}
		}
	}
	return out
}

func (d *Daemon) expiryOf(sid string) (time.Time, bool) {
	if s, ok := d.sessions.Get(sid); ok {
		return s.Expires(), true
	}
	g, ok := d.grants.snapshot(d.clock())[sid]
	return g.Expires, ok
}

// grantRecord is one persisted grant: enough to find and kill the session
// after a restart. It holds no token.
type grantRecord struct {
	Agent   string    `json:"agent"`
	Expires time.Time `json:"expires"`
	Fence   string    `json:"fence,omitempty"`
}

// grantStore persists which sessions were granted, so that `kill --agent`
// and `sessions` know about sessions that predate a restart.
type grantStore struct {
	mu   sync.Mutex
	path string
	m    map[string]grantRecord
}

func openGrants(path string) (*grantStore, error) {
	g := &grantStore{path: path, m: map[string]grantRecord{}}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return g, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read grants: %w", err)
	}
	if err := json.Unmarshal(b, &g.m); err != nil {
		return nil, fmt.Errorf("grants file %s is corrupt: %w", path, err)
	}
	return g, nil
}

func (g *grantStore) get(sid string) (grantRecord, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	r, ok := g.m[sid]
	return r, ok
}

func (g *grantStore) add(sid string, rec grantRecord, now time.Time) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.m[sid] = rec
	for id, r := range g.m {
		if r.Expires.Before(now) {
			delete(g.m, id)
		}
	}
	b, err := json.Marshal(g.m)
	if err != nil {
		return err
	}
	return durable.WriteFile(g.path, b, 0o600)
}

func (g *grantStore) snapshot(now time.Time) map[string]grantRecord {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make(map[string]grantRecord, len(g.m))
	for id, r := range g.m {
		if r.Expires.After(now) {
			out[id] = r
		}
	}
	return out
}

// bindToProcess kills sess when process pid exits. The watcher goroutine
// is owned by the session: it ends when the process exits, the session
// ends, or the daemon stops.
func (d *Daemon) bindToProcess(sess *capability.Session, pid int) {
	d.agents.add(pid, sess.ID)
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		defer d.agents.remove(pid)
		if waitProcessExit(d.runCtx, sess.Context(), pid) {
			if err := d.killSession(sess.ID, sess.Expires(), fmt.Sprintf("bound process %d exited", pid)); err != nil {
				d.log.Error("kill session of exited process", "session", sess.ID, "err", err)
			}
		}
	}()
}
