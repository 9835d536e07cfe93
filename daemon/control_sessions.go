package daemon

import (
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/tokfence/tokfence/capability"
	"github.com/tokfence/tokfence/daemon/api"
	"github.com/tokfence/tokfence/daemon/audit"
	"github.com/tokfence/tokfence/daemon/localsock"
	"github.com/tokfence/tokfence/daemon/meter"
	"github.com/tokfence/tokfence/daemon/proc"
	"github.com/tokfence/tokfence/policy"
)

func (d *Daemon) handleGrant(w http.ResponseWriter, r *http.Request) {
	var req api.GrantRequest
	if !decodeJSON(w, r, &req) {
		return
	}
	ttl, ok := parseTTL(w, req.TTL)
	if !ok {
		return
	}
	if ttl == 0 && req.BindPeer {
		// A bound session dies with its process (exec's child), so its
		// token lives as long as the process, up to max_ttl: an SDK reads
		// its key once, and it must not go stale mid-run.
		ttl = d.cfg.MaxTTL.Duration
	}
	for _, p := range req.Providers {
		pr, ok := d.providers[p]
		if !ok {
			writeError(w, http.StatusBadRequest, errInvalid, fmt.Sprintf("unknown provider %q", p))
			return
		}
		if pr.Base == nil {
			writeError(w, http.StatusBadRequest, errInvalid, fmt.Sprintf("provider %q has no base_url configured", p))
			return
		}
	}
	if msg := checkFenceRequest(req); msg != "" {
		writeError(w, http.StatusBadRequest, errInvalid, msg)
		return
	}
	peer, _ := localsock.PeerFrom(r.Context())
	var fh *proc.Handle
	if req.Fence == api.FenceFenced {
		h, err := proc.OpenChild(req.FencePID, peer.PID)
		if err != nil {
			writeError(w, http.StatusBadRequest, errInvalid, "fenced grant: "+err.Error())
			return
		}
		fh = h
		defer func() {
			if fh != nil { // the grant failed before the fence was bound
				fh.Close()
			}
		}()
	}
	if req.MaxSpendUSD < 0 || req.MaxSpendUSD > 1e6 {
		writeError(w, http.StatusBadRequest, errInvalid, "max_spend_usd must be between 0 and 1000000")
		return
	}
	scope := capability.Scope{Providers: req.Providers, Models: req.Models, Endpoints: req.Endpoints,
		MaxRequests: req.MaxRequests, MaxTokens: req.MaxTokens, MaxSpendMicroUSD: int64(req.MaxSpendUSD * 1e6)}
	token, claims, err := d.auth.Mint(req.Agent, scope, ttl)
	if err != nil {
		writeError(w, http.StatusBadRequest, errInvalid, "grant: "+err.Error())
		return
	}
	canaries, err := canaryEnv(d.policy().CanaryEnv())
	if err != nil {
		writeError(w, http.StatusInternalServerError, errInternal, "make canaries: "+err.Error())
		return
	}
	detail := map[string]string{"providers": strings.Join(req.Providers, ","), "expires": claims.ExpiresAt.Time.UTC().Format(time.RFC3339)}
	if req.Fence != "" {
		detail["fence"] = req.Fence
	}
	if len(req.Exposed) > 0 {
		detail["exposed"] = strings.Join(req.Exposed, ":")
	}
	st, err := d.openSession(token, claims, peer, canaries, detail, req.Fence)
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, errUnavailable, err.Error())
		return
	}
	sess := st.Session
	var agentSock string
	if fh != nil {
		// The fence is bound before its socket exists: from here on, the
		// session's end kills it, however the grant ends.
		d.bindFence(sess, fh)
		fh = nil // the session owns it now
		if agentSock, err = d.openAgentSocket(sess); err != nil {
			d.endSession(claims.SID, "agent socket could not be opened")
			writeError(w, http.StatusInternalServerError, errInternal, "fenced grant: "+err.Error())
			return
		}
	}
	if req.BindPeer && peer.PID > 0 {
		d.bindToProcess(sess, peer.PID)
	}
	d.log.Info("granted", "session", claims.SID, "agent", claims.Subject, "jti", claims.ID,
		"providers", req.Providers, "expires", claims.ExpiresAt.Time, "peer_pid", peer.PID, "bound", req.BindPeer)
	g := d.grantReply(token, claims, req)
	g.Canaries = canaries
	g.AgentSocket = agentSock
	writeJSON(w, http.StatusOK, g)
}

// parseTTL reads a request's ttl ("" is 0, the default); it writes the
// refusal itself.
func parseTTL(w http.ResponseWriter, s string) (time.Duration, bool) {
	if s == "" {
		return 0, true
	}
	v, err := time.ParseDuration(s)
	if err != nil || v <= 0 {
		writeError(w, http.StatusBadRequest, errInvalid, fmt.Sprintf("ttl %q: want a positive duration such as 30m", s))
		return 0, false
	}
	return v, true
}

// handleRenew issues a further token for a live session: same agent and
// scope, a later expiry, but never past the session's first token's issue
// plus max_ttl. The old token stays good until its own expiry; kill ends
// both.
func (d *Daemon) handleRenew(w http.ResponseWriter, r *http.Request) {
	var req api.RenewRequest
	if !decodeJSON(w, r, &req) {
		return
	}
	ttl, ok := parseTTL(w, req.TTL)
	if !ok {
		return
	}
	if !sessionIDRE.MatchString(req.Session) {
		writeError(w, http.StatusBadRequest, errInvalid, fmt.Sprintf("session id %q: want 32 hex characters", req.Session))
		return
	}
	sess, ok := d.sessions.Get(req.Session)
	if !ok {
		msg := fmt.Sprintf("session %s is not live", req.Session)
		if _, known := d.live.grants.snapshot(d.clock())[req.Session]; known {
			msg += " in this daemon run (it predates a restart and has not been used since); grant a new one"
		}
		writeError(w, http.StatusNotFound, errNotFound, msg)
		return
	}
	token, claims, err := d.auth.Renew(sess.ID, sess.Agent, sess.Scope, sess.Created, ttl)
	switch {
	case errors.Is(err, capability.ErrRevoked):
		writeError(w, http.StatusNotFound, errNotFound, fmt.Sprintf("session %s was killed", sess.ID))
		return
	case errors.Is(err, capability.ErrSessionTooOld):
		writeError(w, http.StatusConflict, errInvalid, fmt.Sprintf("session %s has reached max_ttl (%s) since its first token; grant a new one", sess.ID, d.cfg.MaxTTL))
		return
	case err != nil:
		writeError(w, http.StatusBadRequest, errInvalid, err.Error())
		return
	}
	if _, err := d.sessions.Renewed(claims); err != nil {
		writeError(w, http.StatusNotFound, errNotFound, err.Error())
		return
	}
	d.registerSession(token, claims, nil)
	if _, err := d.appendAudit(audit.Record{Event: audit.EventRenew, Session: claims.SID, Agent: claims.Subject, JTI: claims.ID,
		Detail: map[string]string{"expires": claims.ExpiresAt.Time.UTC().Format(time.RFC3339)}}); err != nil {
		d.endSession(claims.SID, "renewal could not be audited")
		writeError(w, http.StatusServiceUnavailable, errUnavailable, "audit trail unwritable; refusing to renew: "+err.Error())
		return
	}
	rec := grantRecord{Agent: claims.Subject, Expires: claims.ExpiresAt.Time}
	if old, ok := d.live.grants.get(sess.ID); ok {
		rec.Fence = old.Fence
	}
	if err := d.live.grants.add(claims.SID, rec, d.clock()); err != nil {
		d.log.Error("persist renewal", "session", claims.SID, "err", err)
	}
	d.log.Info("renewed", "session", claims.SID, "agent", claims.Subject, "jti", claims.ID, "expires", claims.ExpiresAt.Time)
	writeJSON(w, http.StatusOK, d.grantReply(token, claims, api.GrantRequest{}))
}

// checkFenceRequest returns what is wrong with req's fence fields, or "".
func checkFenceRequest(req api.GrantRequest) string {
	switch req.Fence {
	case "", api.FenceUnfenced:
		if req.FencePID != 0 || req.FencePort != 0 {
			return "fence_pid and fence_port are for fenced grants only"
		}
	case api.FenceFenced:
		if !req.BindPeer {
			return "a fenced grant must be bound to its caller (bind_peer)"
		}
		if req.FencePort < 1 || req.FencePort > 65535 {
			return fmt.Sprintf("fence_port %d out of range", req.FencePort)
		}
	default:
		return fmt.Sprintf("fence %q: want %q or %q", req.Fence, api.FenceFenced, api.FenceUnfenced)
	}
	return ""
}

func (d *Daemon) grantReply(token string, c *capability.Claims, req api.GrantRequest) api.Grant {
	g := api.Grant{Token: token, Session: c.SID, Agent: c.Subject, Expires: c.ExpiresAt.Time, Scope: c.Scope,
		BaseURLs: map[string]string{}, Env: map[string]string{}, TCP: d.tcpAddr}
	for _, name := range c.Scope.Providers {
		p := d.providers[name]
		for _, env := range []string{p.KeyEnv, p.TokenEnv} {
			if env != "" {
				g.Env[env] = token
			}
		}
		if addr := d.baseAddr(req); addr != "" {
			u := "http://" + addr + "/" + name + p.BaseSuffix
			g.BaseURLs[name] = u
			if p.BaseEnv != "" {
				g.Env[p.BaseEnv] = u
			}
		}
	}
	return g
}

// baseAddr is the address an agent of req reaches the daemon at: the
// fence's forwarder for a fenced exec, else the TCP listener, if any.
func (d *Daemon) baseAddr(req api.GrantRequest) string {
	if req.Fence == api.FenceFenced {
		return fmt.Sprintf("127.0.0.1:%d", req.FencePort)
	}
	return d.tcpAddr
}

func (d *Daemon) handleSessions(w http.ResponseWriter, r *http.Request) {
	live := d.sessions.List()
	grants := d.live.grants.snapshot(d.clock())
	out := make([]api.SessionInfo, 0, len(live))
	for _, s := range live {
		info := api.SessionInfo{ID: s.ID, Agent: s.Agent, Scope: s.Scope, Created: s.Created, Expires: s.Expires(),
			Requests: s.Requests(), Risk: policy.Green.String(), PeerPID: s.Peer.PID, PeerExe: s.Peer.Exe}
		info.Fence = grants[s.ID].Fence
		u := d.meter.Session(s.ID)
		info.Tokens, info.SpendUSD, info.Unpriced = u.Tokens, meter.USD(u.MicroUSD), u.Unpriced
		if st, ok := d.live.lookup(s.ID); ok {
			info.Risk, info.RiskReason = st.risk.State().String(), st.risk.Reason()
		}
		out = append(out, info)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Created.Before(out[j].Created) })
	writeJSON(w, http.StatusOK, out)
}

func (d *Daemon) handleKill(w http.ResponseWriter, r *http.Request) {
	var req api.KillRequest
	if !decodeJSON(w, r, &req) {
		return
	}
	n := 0
	for _, set := range []bool{req.Session != "", req.Agent != "", req.All} {
		if set {
			n++
		}
	}
	if n != 1 {
		writeError(w, http.StatusBadRequest, errInvalid, "kill: name exactly one of a session, an agent, or all")
		return
	}
	res, err := d.kill(req)
	if errors.Is(err, errUnknownSession) {
		writeError(w, http.StatusNotFound, errNotFound, "kill: "+err.Error())
		return
	}
	if err != nil {
		writeError(w, http.StatusInternalServerError, errInternal, "kill: "+err.Error())
		return
	}
	writeJSON(w, http.StatusOK, res)
}

// errUnknownSession is returned by kill for a session id this daemon never
// issued or that has already expired.
var errUnknownSession = errors.New("no such session")

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
