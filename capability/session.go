package capability

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// ErrLimit is returned by Session.AddRequest once the scope's MaxRequests is
// used up.
var ErrLimit = errors.New("session request limit reached")

// PeerInfo is what the kernel told the daemon about the process that created
// a session. A session restored from a token after a restart has none.
type PeerInfo struct {
	UID, PID int
	Exe      string
}

// Session is one grant: the unit of risk, accounting and revocation. Its
// exported fields are set at creation and never change, so they may be read
// without locking. Requests and streams of the session derive their contexts
// from Context, so killing the session aborts them.
type Session struct {
	ID    string
	Agent string
	Scope Scope
	// Created is when the session's first token was issued.
	Created time.Time
	Peer    PeerInfo

	expires  atomic.Int64 // Unix ns: the latest expiry of its tokens seen
	requests atomic.Int64
	ctx      context.Context
	cancel   context.CancelCauseFunc
}

// Context returns the session's context. It is cancelled with cause
// ErrRevoked when the session is killed and ErrExpired when it is pruned;
// read the cause with context.Cause.
func (s *Session) Context() context.Context { return s.ctx }

// Expires is when the session's last token expires: it moves later when
// the session is renewed.
func (s *Session) Expires() time.Time { return time.Unix(0, s.expires.Load()).UTC() }

// extend moves the session's expiry to exp if that is later.
func (s *Session) extend(exp time.Time) {
	for {
		cur := s.expires.Load()
		if exp.UnixNano() <= cur || s.expires.CompareAndSwap(cur, exp.UnixNano()) {
			return
		}
	}
}

// Requests returns the number of requests admitted so far.
func (s *Session) Requests() int64 { return s.requests.Load() }

// Killed reports whether the session has been killed or pruned.
func (s *Session) Killed() bool { return s.ctx.Err() != nil }

// AddRequest admits one more request and returns the new count. It refuses,
// without counting, a request past Scope.MaxRequests (ErrLimit) or on a dead
// session (the context's cause, ErrRevoked or ErrExpired).
func (s *Session) AddRequest() (int64, error) {
	if err := context.Cause(s.ctx); err != nil {
		return s.requests.Load(), fmt.Errorf("session %s: %w", s.ID, err)
	}
	limit := s.Scope.MaxRequests
	for {
		n := s.requests.Load()
		if limit > 0 && n >= limit {
			return n, fmt.Errorf("session %s: %d of %d requests: %w", s.ID, n, limit, ErrLimit)
		}
		if s.requests.CompareAndSwap(n, n+1) {
			return n + 1, nil
		}
	}
}

// CheckRequest reports whether AddRequest would now admit a request,
// without counting one: ErrLimit past Scope.MaxRequests, or the cause of a
// dead session.
func (s *Session) CheckRequest() error {
	if err := context.Cause(s.ctx); err != nil {
		return fmt.Errorf("session %s: %w", s.ID, err)
	}
	if n, limit := s.requests.Load(), s.Scope.MaxRequests; limit > 0 && n >= limit {
		return fmt.Errorf("session %s: %d of %d requests: %w", s.ID, n, limit, ErrLimit)
	}
	return nil
}

// UndoRequest takes back one request AddRequest counted, for a request
// that then never went out.
func (s *Session) UndoRequest() {
	for {
		n := s.requests.Load()
		if n <= 0 || s.requests.CompareAndSwap(n, n-1) {
			return
		}
	}
}

// kill cancels the session's context with cause.
func (s *Session) kill(cause error) { s.cancel(cause) }

// Registry holds the live sessions of this daemon run. It is safe for
// concurrent use. It remembers killed session ids until their tokens expire,
// so a killed session cannot be restored by GetOrRestore even if a caller
// skipped the revocation check; the persisted Revocations remain the
// authority across restarts.
type Registry struct {
	clock func() time.Time
	root  context.Context
	revs  atomic.Pointer[Revocations]

	mu       sync.Mutex
	sessions map[string]*Session
	killed   map[string]time.Time // sid -> expiry of the killed session
}

// NewRegistry returns an empty Registry. clock nil means time.Now.
func NewRegistry(clock func() time.Time) *Registry {
	if clock == nil {
		clock = time.Now
	}
	return &Registry{
		clock:    clock,
		root:     context.Background(),
		sessions: make(map[string]*Session),
		killed:   make(map[string]time.Time),
	}
}

// SetRevocations makes Add and GetOrRestore consult revs under the registry
// lock. That closes the window between a request's Verify and its restore: a
// kill persists the revocation before calling Kill, so a session is either
// registered when Kill scans, or its revocation is visible here.
func (r *Registry) SetRevocations(revs *Revocations) {
	r.revs.Store(revs)
}

// revokedLocked reports whether c is revoked, by this run's kills or by the
// attached revocation list.
func (r *Registry) revokedLocked(c *Claims) error {
	if _, dead := r.killed[c.SID]; dead {
		return ErrRevoked
	}
	if revs := r.revs.Load(); revs != nil {
		return revs.Revoked(c)
	}
	return nil
}

func (r *Registry) newSession(c *Claims, peer PeerInfo) *Session {
	s := &Session{ID: c.SID, Agent: c.Subject, Scope: c.Scope, Peer: peer, Created: c.SessionStart()}
	if s.Created.IsZero() {
		s.Created = r.clock()
	}
	if c.ExpiresAt != nil {
		s.extend(c.ExpiresAt.Time)
	}
	s.ctx, s.cancel = context.WithCancelCause(r.root)
	return s
}

// Add registers the session named by c (freshly minted) with the peer that
// asked for it, and returns it. If the session exists, Add returns it
// unchanged. If it was killed or is revoked, Add returns a session that is
// already dead and registers nothing.
func (r *Registry) Add(c *Claims, peer PeerInfo) *Session {
	r.mu.Lock()
	defer r.mu.Unlock()
	if s, ok := r.sessions[c.SID]; ok {
		return s
	}
	s := r.newSession(c, peer)
	if r.revokedLocked(c) != nil {
		s.kill(ErrRevoked)
		return s
	}
	r.sessions[c.SID] = s
	return s
}

// Get returns the live session sid.
func (r *Registry) Get(sid string) (*Session, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s, ok := r.sessions[sid]
	return s, ok
}

// GetOrRestore returns the session named by verified claims c, re-creating it
// from the claims if this daemon run has not seen it (after a restart). The
// caller must have verified c; GetOrRestore still refuses a session killed in
// this run or revoked in the attached list (ErrRevoked), an expired one
// (ErrExpired), and claims whose agent differs from the session's.
func (r *Registry) GetOrRestore(c *Claims) (*Session, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if s, ok := r.sessions[c.SID]; ok {
		if s.Agent != c.Subject {
			return nil, fmt.Errorf("restore session %s: token names agent %s, session has %s", c.SID, c.Subject, s.Agent)
		}
		if c.ExpiresAt != nil {
			s.extend(c.ExpiresAt.Time) // a renewed token, first seen since a restart
		}
		return s, nil
	}
	if err := r.revokedLocked(c); err != nil {
		return nil, fmt.Errorf("restore session %s: %w", c.SID, err)
	}
	if c.ExpiresAt == nil || !r.clock().Before(c.ExpiresAt.Time) {
		return nil, fmt.Errorf("restore session %s: %w", c.SID, ErrExpired)
	}
	s := r.newSession(c, PeerInfo{})
	r.sessions[c.SID] = s
	return s, nil
}

// Renewed records c, a renewal of a live session, and returns the
// session, now expiring no sooner than c. It refuses a session that is
// not live here (ErrRevoked if it was killed) and claims that name
// another agent.
func (r *Registry) Renewed(c *Claims) (*Session, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.revokedLocked(c); err != nil {
		return nil, fmt.Errorf("renew session %s: %w", c.SID, err)
	}
	s, ok := r.sessions[c.SID]
	if !ok || s.Agent != c.Subject || c.ExpiresAt == nil {
		return nil, fmt.Errorf("renew session %s: not a live session of agent %s", c.SID, c.Subject)
	}
	s.extend(c.ExpiresAt.Time)
	return s, nil
}

// List prunes expired sessions and returns the live ones, oldest first.
func (r *Registry) List() []*Session {
	r.Prune()
	r.mu.Lock()
	out := make([]*Session, 0, len(r.sessions))
	for _, s := range r.sessions {
		out = append(out, s)
	}
	r.mu.Unlock()
	slices.SortFunc(out, func(a, b *Session) int {
		return cmp.Or(a.Created.Compare(b.Created), cmp.Compare(a.ID, b.ID))
	})
	return out
}

// Prune removes sessions whose expiry has passed, cancelling their contexts
// with cause ErrExpired, and forgets killed ids whose tokens are all dead.
// It returns the sessions it removed.
func (r *Registry) Prune() []*Session {
	now := r.clock()
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*Session
	for id, s := range r.sessions {
		if !now.Before(s.Expires()) {
			delete(r.sessions, id)
			s.kill(ErrExpired)
			out = append(out, s)
		}
	}
	for id, exp := range r.killed {
		if now.After(exp.Add(leeway)) {
			delete(r.killed, id)
		}
	}
	return out
}

// Kill removes session sid and cancels its context with cause ErrRevoked.
// Persist the revocation first (Revocations.RevokeSession): Kill alone does
// not survive a restart.
func (r *Registry) Kill(sid string) (*Session, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s, ok := r.sessions[sid]
	if ok {
		r.killLocked(s)
	}
	return s, ok
}

// KillAgent kills every session of agent and returns them.
func (r *Registry) KillAgent(agent string) []*Session {
	return r.killWhere(func(s *Session) bool { return s.Agent == agent })
}

// KillAll kills every session and returns them. Persist Revocations.BumpEpoch
// first, so that tokens of sessions not yet restored die too.
func (r *Registry) KillAll() []*Session {
	return r.killWhere(func(*Session) bool { return true })
}

func (r *Registry) killWhere(match func(*Session) bool) []*Session {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*Session
	for _, s := range r.sessions {
		if match(s) {
			r.killLocked(s)
			out = append(out, s)
		}
	}
	slices.SortFunc(out, func(a, b *Session) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

func (r *Registry) killLocked(s *Session) {
	delete(r.sessions, s.ID)
	r.killed[s.ID] = s.Expires()
	s.kill(ErrRevoked)
}
