package daemon

import (
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/tokfence/tokfence/capability"
	"github.com/tokfence/tokfence/daemon/audit"
	"github.com/tokfence/tokfence/policy"
)

// GrantRequest is the body of POST /v1/grant.
type GrantRequest struct {
	Agent       string   `json:"agent"`
	Providers   []string `json:"providers"`
	Models      []string `json:"models,omitempty"`
	Endpoints   []string `json:"endpoints,omitempty"`
	TTL         string   `json:"ttl,omitempty"` // Go duration; "" = 15m
	MaxRequests int64    `json:"max_requests,omitempty"`
	MaxTokens   int64    `json:"max_tokens,omitempty"`
	MaxSpendUSD float64  `json:"max_spend_usd,omitempty"`
	// BindPeer ties the session to the calling process: when it exits,
	// however it exits, the daemon kills the session. `tokfence exec` sets it.
	BindPeer bool `json:"bind_peer,omitempty"`
	// Fence is how `tokfence exec` runs the agent: FenceFenced (the daemon
	// then opens the session's agent socket and binds the fence) or
	// FenceUnfenced (--no-fence). Empty for a token minted by `grant`.
	Fence string `json:"fence,omitempty"`
	// FencePID is the fence init's pid, a child of the caller.
	FencePID int `json:"fence_pid,omitempty"`
	// FencePort is the forwarder's port inside the fence; the base URLs
	// in the reply point at it.
	FencePort int `json:"fence_port,omitempty"`
	// Exposed are hidden paths the user re-showed (fence.expose), for the
	// audit trail.
	Exposed []string `json:"exposed,omitempty"`
}

// How a session's agent runs, in GrantRequest.Fence and SessionInfo.Fence.
const (
	FenceFenced   = "fenced"
	FenceUnfenced = "unfenced"
)

// Grant is the reply of POST /v1/grant. Token is the capability; Env holds
// the variables an agent's SDKs read (key and base URL per provider).
type Grant struct {
	Token    string            `json:"token"`
	Session  string            `json:"session"`
	Agent    string            `json:"agent"`
	Expires  time.Time         `json:"expires"`
	Scope    capability.Scope  `json:"scope"`
	BaseURLs map[string]string `json:"base_urls,omitempty"`
	Env      map[string]string `json:"env"`
	// Canaries are decoy credentials, by env var name, that `tokfence exec`
	// plants in the agent's environment; any sighting turns the session RED.
	Canaries map[string]string `json:"canaries,omitempty"`
	TCP      string            `json:"tcp,omitempty"`
	// AgentSocket is a fenced session's agent socket on the host.
	AgentSocket string `json:"agent_socket,omitempty"`
}

func (d *Daemon) handleGrant(w http.ResponseWriter, r *http.Request) {
	var req GrantRequest
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
	peer, _ := PeerFrom(r.Context())
	var fh *fenceHandle
	if req.Fence == FenceFenced {
		h, err := openFence(req.FencePID, peer.PID)
		if err != nil {
			writeError(w, http.StatusBadRequest, errInvalid, "fenced grant: "+err.Error())
			return
		}
		fh = h
		defer func() {
			if fh != nil { // the grant failed before the fence was bound
				fh.close()
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

// RenewRequest is the body of POST /v1/renew.
type RenewRequest struct {
	Session string `json:"session"`
	TTL     string `json:"ttl,omitempty"` // Go duration; "" = 15m
}

// handleRenew issues a further token for a live session: same agent and
// scope, a later expiry, but never past the session's first token's issue
// plus max_ttl. The old token stays good until its own expiry; kill ends
// both.
func (d *Daemon) handleRenew(w http.ResponseWriter, r *http.Request) {
	var req RenewRequest
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
	writeJSON(w, http.StatusOK, d.grantReply(token, claims, GrantRequest{}))
}

// checkFenceRequest returns what is wrong with req's fence fields, or "".
func checkFenceRequest(req GrantRequest) string {
	switch req.Fence {
	case "", FenceUnfenced:
		if req.FencePID != 0 || req.FencePort != 0 {
			return "fence_pid and fence_port are for fenced grants only"
		}
	case FenceFenced:
		if !req.BindPeer {
			return "a fenced grant must be bound to its caller (bind_peer)"
		}
		if req.FencePort < 1 || req.FencePort > 65535 {
			return fmt.Sprintf("fence_port %d out of range", req.FencePort)
		}
	default:
		return fmt.Sprintf("fence %q: want %q or %q", req.Fence, FenceFenced, FenceUnfenced)
	}
	return ""
}

func (d *Daemon) grantReply(token string, c *capability.Claims, req GrantRequest) Grant {
	g := Grant{Token: token, Session: c.SID, Agent: c.Subject, Expires: c.ExpiresAt.Time, Scope: c.Scope,
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
func (d *Daemon) baseAddr(req GrantRequest) string {
	if req.Fence == FenceFenced {
		return fmt.Sprintf("127.0.0.1:%d", req.FencePort)
	}
	return d.tcpAddr
}

// SessionInfo is one row of GET /v1/sessions.
type SessionInfo struct {
	ID         string           `json:"id"`
	Agent      string           `json:"agent"`
	Scope      capability.Scope `json:"scope"`
	Created    time.Time        `json:"created"`
	Expires    time.Time        `json:"expires"`
	Requests   int64            `json:"requests"`
	Risk       string           `json:"risk"`
	RiskReason string           `json:"risk_reason,omitempty"`
	PeerPID    int              `json:"peer_pid,omitempty"`
	PeerExe    string           `json:"peer_exe,omitempty"`
	Restored   bool             `json:"restored,omitempty"`
	Tokens     int64            `json:"tokens"`
	SpendUSD   float64          `json:"spend_usd"`
	Unpriced   int64            `json:"unpriced_requests,omitempty"`
	// Fence is FenceFenced or FenceUnfenced for a session of `tokfence
	// exec`, empty for a token minted by `grant`.
	Fence string `json:"fence,omitempty"`
}

func (d *Daemon) handleSessions(w http.ResponseWriter, r *http.Request) {
	live := d.sessions.List()
	grants := d.live.grants.snapshot(d.clock())
	out := make([]SessionInfo, 0, len(live))
	for _, s := range live {
		info := SessionInfo{ID: s.ID, Agent: s.Agent, Scope: s.Scope, Created: s.Created, Expires: s.Expires(),
			Requests: s.Requests(), Risk: policy.Green.String(), PeerPID: s.Peer.PID, PeerExe: s.Peer.Exe}
		info.Fence = grants[s.ID].Fence
		u := d.meter.session(s.ID)
		info.Tokens, info.SpendUSD, info.Unpriced = u.Tokens, usd(u.MicroUSD), u.Unpriced
		if st, ok := d.live.lookup(s.ID); ok {
			info.Risk, info.RiskReason = st.risk.State().String(), st.risk.Reason()
		}
		out = append(out, info)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Created.Before(out[j].Created) })
	writeJSON(w, http.StatusOK, out)
}

// KillRequest is the body of POST /v1/kill: exactly one of the fields.
type KillRequest struct {
	Session string `json:"session,omitempty"`
	Agent   string `json:"agent,omitempty"`
	All     bool   `json:"all,omitempty"`
}

// KillResult is the reply of POST /v1/kill.
type KillResult struct {
	Killed []string `json:"killed"`
	Epoch  uint64   `json:"epoch,omitempty"`
}

func (d *Daemon) handleKill(w http.ResponseWriter, r *http.Request) {
	var req KillRequest
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
