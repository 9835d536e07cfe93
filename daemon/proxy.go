package daemon

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tokfence/tokfence/capability"
	"github.com/tokfence/tokfence/daemon/api"
	"github.com/tokfence/tokfence/daemon/localsock"
	"github.com/tokfence/tokfence/daemon/meter"
	"github.com/tokfence/tokfence/keystore"
	"github.com/tokfence/tokfence/policy"
)

// forward is what one proxied request carries from the handler to Rewrite.
type forward struct {
	p     *Provider
	rest  string // upstream path below the provider's base
	query url.Values
	key   keystore.Secret
	token string
	sess  *session
	model string
	rec   *requestRecord
	// body is what goes upstream: the request body as the sensors cleared
	// it (and as requestUsage changed it). Rewrite sends it.
	body []byte
	// stripUsage is set when the daemon asked for a usage chunk the agent
	// did not; the response filter removes it.
	stripUsage bool
	// streaming is set when the reply is forwarded as it arrives, and
	// reply is then its body.
	streaming bool
	reply     *scanBody
	// method is what policy and scope check the request as: its own, but
	// POST for a WebSocket, which carries model calls (POST /v1/responses).
	method string
	claims *capability.Claims
	// upgrade is set on a WebSocket handshake.
	upgrade bool

	// Set by bind.
	ctx    context.Context // the request's, carried from admission to forwarding
	cancel context.CancelCauseFunc
	stop   func() bool
	idle   *time.Timer
}

// errUpstreamIdle cancels a request whose upstream went silent.
var errUpstreamIdle = errors.New("upstream sent nothing for too long")

type forwardKey struct{}

func (d *Daemon) newReverseProxy() *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Rewrite:   d.rewrite,
		Transport: d.transport,
		// Streamed replies (SSE, and every reply wrapResponse re-frames as
		// chunked) are flushed on every write: ReverseProxy does that for
		// any reply without a Content-Length. A sized reply is written
		// whole and flushed once, by handleProxy, in one write.
		FlushInterval:  0,
		ModifyResponse: d.modifyResponse,
		ErrorHandler:   d.proxyError,
		ErrorLog:       slogLogger(d.log),
		BufferPool:     copyBuffers{},
	}
}

// handleProxy serves /{provider}/{rest...}: authenticate, check policy and
// scope, then forward with the real key.
func (d *Daemon) handleProxy(w http.ResponseWriter, r *http.Request) {
	rec := d.newRecord(r)
	defer d.finishRecord(rec)
	f := d.prepareForward(w, r, rec)
	if f == nil {
		return
	}
	defer f.release()
	rw := &replyWriter{ResponseWriter: w, f: f}
	defer rw.drop() // also when ReverseProxy aborts the handler on a failed copy
	d.proxy.ServeHTTP(rw, r.WithContext(f.ctx))
	// The reply is complete: send it now rather than after the deferred
	// bookkeeping, which the agent need not wait for.
	_ = http.NewResponseController(w).Flush()
}

// replyWriter is what ReverseProxy writes the reply through. A streamed
// reply's header is sent as soon as ReverseProxy sets the status. Left to
// itself, ReverseProxy sends it from a timer goroutine or, when the first
// event wins that race, from deep in its copy loop; net/http's header
// writing is the deepest point of the request path, and done from there it
// doubles the stack (8 to 16 KiB) that the stream's goroutine keeps for its
// whole life (see routes.go). Sent from here it is the same bytes, at the
// same moment or earlier.
//
// It also gathers a streamed reply's writes while the reply has more
// bytes ready (one upstream read brings up to burstSize, which
// ReverseProxy copies out in 4 KiB pieces, each written and flushed): the
// pieces go to the agent as one write, flushed once, as the read brought
// them. Nothing waits for the upstream while bytes are gathered: the next
// Read returns at once with bytes already cleared.
type replyWriter struct {
	http.ResponseWriter
	f      *forward
	gather []byte // pieces of one burst not yet written; from burstPool
}

func (rw *replyWriter) Write(p []byte) (int, error) {
	more := rw.f.reply != nil && rw.f.reply.more()
	if rw.gather == nil && !more {
		return rw.ResponseWriter.Write(p)
	}
	if rw.gather == nil {
		rw.gather = burstPool.Get().(*[burstSize]byte)[:0]
	}
	if len(rw.gather)+len(p) > cap(rw.gather) {
		// The burst outgrew the buffer (behind bytes the sensor held).
		if _, err := rw.ResponseWriter.Write(rw.gather); err != nil {
			return 0, err
		}
		rw.gather = rw.gather[:0]
	}
	rw.gather = append(rw.gather, p...)
	if more {
		return len(p), nil
	}
	_, err := rw.ResponseWriter.Write(rw.gather)
	rw.drop()
	if err != nil {
		return 0, err
	}
	return len(p), nil
}

// FlushError is what ReverseProxy's flush after each write reaches: it is
// skipped while a burst is gathered, whose bytes go out, flushed, with its
// last piece.
func (rw *replyWriter) FlushError() error {
	if rw.gather != nil {
		return nil
	}
	return http.NewResponseController(rw.ResponseWriter).Flush()
}

// drop gives back the gather buffer. After the copy, what it still holds
// is a burst the copy never completed (the session was killed, the
// upstream or the agent failed), and is not sent.
func (rw *replyWriter) drop() {
	if rw.gather != nil {
		burstPool.Put((*[burstSize]byte)(rw.gather[:burstSize]))
		rw.gather = nil
	}
}

func (rw *replyWriter) WriteHeader(code int) {
	rw.ResponseWriter.WriteHeader(code)
	if code >= 200 && rw.f.streaming {
		// A failure here (the agent left) resurfaces on the next write.
		_ = http.NewResponseController(rw.ResponseWriter).Flush()
	}
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (rw *replyWriter) Unwrap() http.ResponseWriter { return rw.ResponseWriter }

// Hijack hands ReverseProxy the agent's connection when the upstream has
// switched to a WebSocket, and the relay a hold on it (see attach).
func (rw *replyWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, brw, err := http.NewResponseController(rw.ResponseWriter).Hijack()
	if err != nil {
		return c, brw, err
	}
	if fc := framedOf(c); fc != nil {
		fc.hijacked()
	}
	if rw.f.rec.relay != nil {
		rw.f.rec.relay.attach(c)
	}
	return c, brw, nil
}

// prepareForward decides whether a request may go upstream, then commits
// to it: every check runs first (path, token, scope, risk state, model,
// rate, budget, request limit, the sensors' verdict, the key), and only a
// request that passes them all spends its rate token and request quota
// and is recorded on the trail; a refused request spends nothing. It
// returns nil when it has refused the request (and written the refusal). It is a function of its own so that its frame,
// the largest of the request path, is off the stack while the reply
// streams (see routes.go on why the request path is kept shallow).
func (d *Daemon) prepareForward(w http.ResponseWriter, r *http.Request, rec *requestRecord) *forward {
	p, ok := d.providers[r.PathValue("provider")]
	if !ok {
		rec.fail(w, http.StatusNotFound, errNotFound, fmt.Sprintf("unknown provider %q", r.PathValue("provider")))
		return nil
	}
	rec.Provider, rec.api = p.Name, p.API
	rest := p.upstreamPath("/" + r.PathValue("rest"))
	rec.Path = rest
	if p.Base == nil {
		rec.fail(w, http.StatusServiceUnavailable, errNotConfigured, fmt.Sprintf("provider %q has no base_url configured", p.Name))
		return nil
	}
	if !allowedPath(p, rest) {
		rec.fail(w, http.StatusNotFound, errNotFound, fmt.Sprintf("path %s is not part of the %s API", rest, p.Name))
		return nil
	}
	upgrade, method := isUpgrade(r.Header), r.Method
	if upgrade {
		if !webSocketHandshake(r) || !p.webSocketPath(rest) { // the front door let it through; check again here
			rec.fail(w, http.StatusBadRequest, errInvalid, "protocol upgrades are refused")
			return nil
		}
		method = http.MethodPost
		if rec.Detail == nil {
			rec.Detail = map[string]string{}
		}
		rec.Detail["upgrade"] = "websocket"
	}
	token, err := extractToken(r.Header)
	if err != nil {
		d.authFailure(r, rec)
		rec.fail(w, http.StatusUnauthorized, errAuth, err.Error())
		return nil
	}
	claims, err := d.auth.Verify(token)
	if err != nil {
		d.authFailure(r, rec)
		rec.fail(w, http.StatusUnauthorized, errAuth, "capability token refused: "+tokenErrorText(err))
		return nil
	}
	if peer, _ := localsock.PeerFrom(r.Context()); peer.Transport == "agent" && claims.SID != peer.Session {
		d.authFailure(r, rec)
		rec.fail(w, http.StatusForbidden, errPermission, errForeignSession.Error())
		return nil
	}
	sess, err := d.sessions.GetOrRestore(claims)
	if err != nil {
		rec.fail(w, http.StatusUnauthorized, errAuth, "capability token refused: "+tokenErrorText(err))
		return nil
	}
	st := d.live.of(sess, d.clock)
	rec.bindSession(claims, sess)
	if !d.hasToken(claims.ID) {
		d.registerSession(token, claims, nil) // first sight since a restart
	}

	f := &forward{p: p, rest: rest, query: forwardQuery(r.URL.Query(), token), token: token, sess: st, rec: rec,
		method: method, claims: claims, upgrade: upgrade}
	if !d.checkRequest(w, r, f, claims) {
		return nil
	}
	key, err := d.providerKey(r.Context(), p.Name)
	if err != nil {
		d.keyError(w, rec, p.Name, err)
		return nil
	}
	f.key = key
	if rec.pol.FullAudit(st.risk.State()) {
		fullDetail(rec, r, f)
	}
	// Decided: now spend. A WebSocket handshake spends nothing: its calls
	// are spent one by one (checkMessage).
	if !f.upgrade {
		if e := d.spend(f, rec.pol); e != nil {
			rec.failErr(w, e)
			return nil
		}
	}
	// The request is on the trail before a byte goes upstream: if it cannot
	// be recorded it is not forwarded (fail closed), and spends nothing.
	if _, err := d.appendAudit(rec.Record); err != nil {
		if !f.upgrade {
			d.unspend(f, rec.pol)
		}
		rec.fail(w, http.StatusServiceUnavailable, errUnavailable, "audit trail unwritable: refusing to forward (fail closed)")
		return nil
	}
	f.bind(r.Context(), d.cfg.UpstreamIdleTimeout.Duration)
	return f
}

// authFailure feeds a refused token to the risk machine of the session
// the request came from, when the peer says which: a fenced agent's
// socket serves one session, and an unfenced agent descends from the exec
// bound to its session. Repeated failures then count (the policy's
// auth_failure rule): an agent guessing or replaying tokens is suspect.
// A peer with no session of its own is only audited.
func (d *Daemon) authFailure(r *http.Request, rec *requestRecord) {
	peer, _ := localsock.PeerFrom(r.Context())
	sid := ""
	switch {
	case peer.Transport == "agent":
		sid = peer.Session
	case peer.Transport == "unix" && peer.PID > 0:
		sid, _ = d.agents.SessionOf(peer.PID)
	}
	if sid == "" {
		return
	}
	sess, ok := d.sessions.Get(sid)
	if !ok {
		return
	}
	rec.Session, rec.Agent = sess.ID, sess.Agent
	d.observe(d.live.of(sess, d.clock), policy.Event{Kind: policy.AuthFailure, Rule: "token"}, rec)
}

// fullDetail adds what the policy's full_audit_from state (YELLOW by
// default) asks for to a request's record: enough to reconstruct what a
// suspect session sent, with no secret in it. The forwarded body by
// digest and size, and the header and query names (values can hold
// anything, a secret of a format the sensors only note included).
func fullDetail(rec *requestRecord, r *http.Request, f *forward) {
	if rec.Detail == nil {
		rec.Detail = map[string]string{}
	}
	sum := sha256.Sum256(f.body)
	rec.Detail["body_sha256"] = hex.EncodeToString(sum[:])
	rec.Detail["body_bytes"] = strconv.Itoa(len(f.body))
	names := make([]string, 0, len(r.Header))
	for k := range r.Header {
		names = append(names, k)
	}
	slices.Sort(names)
	rec.Detail["headers"] = strings.Join(names, ",")
	if len(f.query) > 0 {
		rec.Detail["query"] = strings.Join(slices.Sorted(maps.Keys(f.query)), ",")
	}
	rec.Detail["full_audit"] = "true"
}

// bind derives the context f is forwarded under. It ends when the session
// is killed, when the upstream has sent nothing for idle (each byte read
// from it pushes that back), or at release.
func (f *forward) bind(parent context.Context, idle time.Duration) {
	sctx := f.sess.Context()
	ctx, cancel := context.WithCancelCause(context.WithValue(parent, forwardKey{}, f))
	f.ctx, f.cancel = ctx, cancel
	f.stop = context.AfterFunc(sctx, func() { cancel(context.Cause(sctx)) })
	f.idle = time.AfterFunc(idle, func() { cancel(errUpstreamIdle) })
}

// release ends what bind started, once the reply is done.
func (f *forward) release() {
	f.idle.Stop()
	f.cancel(nil)
	f.stop()
}

// checkRequest runs the checks that need the request body: size, model,
// scope, risk state, and whether the rate, budget and request limits
// leave room; then the sensors. It spends nothing (spend does, once every
// check has passed) and writes the refusal itself.
func (d *Daemon) checkRequest(w http.ResponseWriter, r *http.Request, f *forward, c *capability.Claims) bool {
	pol := f.rec.pol
	if e := d.allowState(f, pol); e != nil {
		f.rec.failErr(w, e)
		return false
	}
	body, ok := d.readBody(w, r, f.rec)
	if !ok {
		return false
	}
	fields, err := fieldsOf(f.p, f.rest, body)
	model := fields.model
	f.model = model
	f.rec.Model = f.model
	e := d.allowModel(f, c, model, err)
	if e == nil {
		e = d.allowRate(f, pol)
	}
	if e == nil && !f.upgrade {
		e = d.allowSpend(f, c, model)
	}
	if e != nil {
		f.rec.failErr(w, e)
		return false
	}
	body = d.requestUsage(f, body, fields)
	return d.scanRequest(w, r, f, body)
}

// allowState refuses what the session's risk state does not allow.
func (d *Daemon) allowState(f *forward, pol *policy.Policy) *api.Error {
	if state := f.sess.risk.State(); !pol.Allows(state, f.method, f.rest) {
		return &api.Error{Status: http.StatusForbidden, Type: errPermission,
			Message: fmt.Sprintf("session is %s: only read-only endpoints are allowed", state)}
	}
	return nil
}

// allowModel refuses a model outside the grant's scope, or a body that
// hides its model from a grant that limits models; err is fieldsOf's.
func (d *Daemon) allowModel(f *forward, c *capability.Claims, model string, err error) *api.Error {
	switch {
	case err != nil && len(c.Scope.Models) > 0:
		// The grant limits models and this body hides which one runs.
		d.observe(f.sess, policy.Event{Kind: policy.ScopeViolation, Rule: "model"}, f.rec)
		return &api.Error{Status: http.StatusForbidden, Type: errPermission,
			Message: "outside the grant's scope: the model cannot be checked: " + err.Error()}
	case errors.Is(err, errModelTwice):
		return &api.Error{Status: http.StatusBadRequest, Type: errInvalid, Message: err.Error()}
	}
	if err := c.Scope.Allow(f.p.Name, model, f.method, f.rest); err != nil {
		d.observe(f.sess, policy.Event{Kind: policy.ScopeViolation, Rule: scopeRule(err)}, f.rec)
		return &api.Error{Status: http.StatusForbidden, Type: errPermission, Message: "outside the grant's scope: " + err.Error()}
	}
	return nil
}

// allowRate refuses a request the session's rate limit has no room for
// now. It takes nothing: spend does.
func (d *Daemon) allowRate(f *forward, pol *policy.Policy) *api.Error {
	st := f.sess
	now, limit := d.clock(), pol.RateLimit(st.Agent, st.risk.State())
	if wait := st.lim.RetryAfter(now, limit); wait > 0 {
		return d.rateRefusal(f, limit, wait)
	}
	return nil
}

func (d *Daemon) rateRefusal(f *forward, limit policy.Limit, wait time.Duration) *api.Error {
	d.observe(f.sess, policy.Event{Kind: policy.LimitExceeded, Rule: "rate"}, f.rec)
	return &api.Error{Status: http.StatusTooManyRequests, Type: errRateLimit, Code: codeRateLimit, RetryAfter: wait,
		Message: fmt.Sprintf("rate limit for a %s session (%s) exceeded", f.sess.risk.State(), limit)}
}

// allowSpend refuses a request past a budget or the grant's request
// limit. It fails the same way on every retry: 403, not 429. It counts
// nothing: spend does.
func (d *Daemon) allowSpend(f *forward, c *capability.Claims, model string) *api.Error {
	if err := d.checkBudget(c, f.p.Name, model); err != nil {
		d.observe(f.sess, policy.Event{Kind: policy.LimitExceeded, Rule: "budget"}, f.rec)
		code := codeBudget
		if errors.Is(err, meter.ErrUnpriced) {
			code = codeUnpriced
		}
		return &api.Error{Status: http.StatusForbidden, Type: errPermission, Code: code, Message: err.Error()}
	}
	if err := f.sess.CheckRequest(); err != nil {
		return requestLimitRefusal(err)
	}
	return nil
}

func requestLimitRefusal(err error) *api.Error {
	e := &api.Error{Status: http.StatusUnauthorized, Type: errAuth, Message: err.Error()}
	if errors.Is(err, capability.ErrLimit) {
		e.Status, e.Type, e.Code = http.StatusForbidden, errPermission, codeRequestLimit
	}
	return e
}

// spend takes a decided request's rate token and counts it against the
// grant's request limit. Concurrent requests of a session may all have
// seen room that only some of them get: the others are refused here, as
// they would have been had they come later, and spend nothing.
func (d *Daemon) spend(f *forward, pol *policy.Policy) *api.Error {
	st := f.sess
	now, limit := d.clock(), pol.RateLimit(st.Agent, st.risk.State())
	if !st.lim.Allow(now, limit) {
		return d.rateRefusal(f, limit, st.lim.RetryAfter(now, limit))
	}
	if _, err := st.AddRequest(); err != nil {
		st.lim.Refund(limit)
		return requestLimitRefusal(err)
	}
	return nil
}

// unspend gives back what spend took, for a request that could not be
// recorded and so never went upstream.
func (d *Daemon) unspend(f *forward, pol *policy.Policy) {
	f.sess.lim.Refund(pol.RateLimit(f.sess.Agent, f.sess.risk.State()))
	f.sess.UndoRequest()
}

// readBody reads the whole request body, bounded by max_body_bytes, so it
// can be scanned before a byte goes upstream. r.Body is left read: what is
// forwarded is forward.body, which rewrite sends.
func (d *Daemon) readBody(w http.ResponseWriter, r *http.Request, rec *requestRecord) ([]byte, bool) {
	max := d.cfg.MaxBodyBytes
	if r.ContentLength > max {
		rec.fail(w, http.StatusRequestEntityTooLarge, errTooLarge, fmt.Sprintf("request body over %d bytes", max))
		return nil, false
	}
	rc := http.NewResponseController(w)
	body, err := readAllSized(&rateReader{r: http.MaxBytesReader(w, r.Body, max), rc: rc, start: time.Now(), grace: d.testOnlyBodyGrace}, r.ContentLength)
	if err == nil {
		// The deadline must not outlive the body: net/http's background
		// read, which notices a client leaving, would take it for one
		// and cancel a long stream.
		_ = rc.SetReadDeadline(time.Time{})
		rec.bodyRead = true
	}
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			rec.fail(w, http.StatusRequestEntityTooLarge, errTooLarge, fmt.Sprintf("request body over %d bytes", max))
		} else {
			rec.fail(w, http.StatusBadRequest, errInvalid, "read request body: "+err.Error())
		}
		return nil, false
	}
	rec.BytesIn = int64(len(body))
	return body, true
}

// readAllSized is io.ReadAll for a body whose length is announced: one
// buffer of that size (and a byte, for the read that finds the end)
// instead of a doubling series of copies. A body longer than announced
// still reads whole; net/http's own framing refuses it first.
func readAllSized(r io.Reader, size int64) ([]byte, error) {
	if size <= 0 {
		return io.ReadAll(r)
	}
	b := make([]byte, 0, size+1)
	for {
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
	}
}

// Body rate: a request body must arrive at bodyMinRate on average after
// bodyGrace, so a peer trickling bytes cannot hold a connection (and a
// handler) for ever, while an honest upload on a slow link (64 KiB/s is
// half a megabit) is never cut. A body of max_body_bytes (32 MiB) has
// about nine minutes.
const (
	bodyGrace   = 10 * time.Second
	bodyMinRate = 64 << 10 // bytes a second
)

// rateReader moves the connection's read deadline with every read to
// start + bodyGrace + read/bodyMinRate.
type rateReader struct {
	r     io.Reader
	rc    *http.ResponseController
	start time.Time
	grace time.Duration
	n     int64
}

func (rr *rateReader) Read(p []byte) (int, error) {
	if err := rr.rc.SetReadDeadline(rr.start.Add(rr.grace + time.Duration(rr.n)*time.Second/bodyMinRate)); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return 0, err
	}
	n, err := rr.r.Read(p)
	rr.n += int64(n)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		err = errBodyTooSlow
	}
	return n, err
}

// errBodyTooSlow cuts a body that fell below bodyMinRate.
var errBodyTooSlow = fmt.Errorf("request body arrived slower than %d KiB/s", bodyMinRate>>10)

// rewrite builds the upstream request: the provider's URL, an allow-listed
// copy of the agent's headers, and the real key set exactly once. It runs
// after ReverseProxy has removed hop-by-hop headers, so a client's
// `Connection: Authorization` cannot strip the injected key.
func (d *Daemon) rewrite(pr *httputil.ProxyRequest) {
	f := pr.In.Context().Value(forwardKey{}).(*forward)
	base := f.p.Base
	pr.Out.URL = &url.URL{Scheme: base.Scheme, Host: base.Host, Path: base.Path + f.rest, RawQuery: f.query.Encode()}
	pr.Out.Host = base.Host
	pr.Out.Header = forwardHeaders(pr.In.Header, f.p, f.token)
	v := string(f.key.Reveal())
	if f.p.AuthScheme != "" {
		v = f.p.AuthScheme + " " + v
	}
	pr.Out.Header.Set(f.p.AuthHeader, v)
	pr.Out.Header.Set("Accept-Encoding", "identity") // the sensors must see plaintext
	if f.upgrade {
		setHandshake(pr.Out.Header, pr.In.Header, f.token)
	}
	// The body is sent from memory, whatever ReverseProxy wrapped the
	// inbound one in: net/http then writes a small request's header and
	// body in one write instead of flushing the header first. No GetBody:
	// a request that failed after a byte was written is not sent again.
	pr.Out.Body, pr.Out.ContentLength = nil, 0
	if len(f.body) > 0 {
		pr.Out.Body, pr.Out.ContentLength = io.NopCloser(bytes.NewReader(f.body)), int64(len(f.body))
	}
}

// modifyResponse strips credential and fingerprinting headers from the
// upstream's reply and puts the body behind the response sensor.
func (d *Daemon) modifyResponse(resp *http.Response) error {
	f := resp.Request.Context().Value(forwardKey{}).(*forward)
	h := resp.Header
	for k := range h {
		if isCredentialHeader(k) || strings.EqualFold(k, "Server") || strings.EqualFold(k, "X-Powered-By") {
			h.Del(k)
		}
	}
	h.Set("X-Content-Type-Options", "nosniff")
	f.rec.Status = resp.StatusCode
	if resp.StatusCode == http.StatusSwitchingProtocols {
		return d.upgradeResponse(resp, f)
	}
	return d.wrapResponse(resp, f)
}

// proxyError answers when the upstream could not be reached or the
// session was killed mid-request. Messages name the cause, never a key.
func (d *Daemon) proxyError(w http.ResponseWriter, r *http.Request, err error) {
	f, _ := r.Context().Value(forwardKey{}).(*forward)
	cause := context.Cause(r.Context())
	switch {
	case errors.Is(cause, capability.ErrRevoked) || errors.Is(err, capability.ErrRevoked):
		// The session was killed mid-request, perhaps by the reply itself
		// (a held key in it is RED, and the reply is not forwarded).
		f.rec.fail(w, http.StatusUnauthorized, errAuth, "session was killed")
	case errors.Is(err, errEncodedReply):
		f.rec.fail(w, http.StatusBadGateway, errUpstream, fmt.Sprintf("%s refused: %s; the sensors read plaintext only", f.p.Name, upstreamErrText(err)))
	case errors.Is(cause, errUpstreamIdle):
		f.rec.fail(w, http.StatusGatewayTimeout, errUpstream, fmt.Sprintf("upstream %s sent nothing for %s", f.p.Name, d.cfg.UpstreamIdleTimeout.Duration))
	case errors.Is(err, errWSHandshake):
		d.log.Warn("upstream websocket handshake refused", "provider", f.p.Name, "err", err)
		f.rec.fail(w, http.StatusBadGateway, errUpstream, fmt.Sprintf("upstream %s: %s", f.p.Name, err))
	case errors.Is(err, context.Canceled):
		f.rec.fail(w, 499, errInvalid, "client went away")
	default:
		d.log.Warn("upstream request failed", "provider", f.p.Name, "err", err)
		f.rec.fail(w, http.StatusBadGateway, errUpstream, fmt.Sprintf("upstream %s unreachable: %s", f.p.Name, upstreamErrText(err)))
	}
}

func (d *Daemon) keyError(w http.ResponseWriter, rec *requestRecord, provider string, err error) {
	switch {
	case errors.Is(err, keystore.ErrNotFound):
		rec.fail(w, http.StatusServiceUnavailable, errNotConfigured, fmt.Sprintf("no %s key is stored; run `tokfence key set %s`", provider, provider))
	case errors.Is(err, keystore.ErrInvalid):
		d.log.Error("stored key is unusable", "provider", provider, "err", err)
		rec.fail(w, http.StatusInternalServerError, errInternal, fmt.Sprintf("the stored %s key is unusable (e.g. it holds a control character); set it again", provider))
	default:
		d.log.Error("keychain", "provider", provider, "err", err)
		rec.fail(w, http.StatusServiceUnavailable, errUnavailable, "keychain unavailable: "+err.Error())
	}
}

// upstreamPath is the path rest is forwarded to: rest itself, or for a
// provider with a VersionPrefix, rest under it when rest is under none of
// the API roots. There is one answer for each rest, and every check
// (paths, scope, policy) and the audit trail see that answer.
func (p *Provider) upstreamPath(rest string) string {
	if p.VersionPrefix != "" && !allowedPath(p, rest) {
		return p.VersionPrefix + rest
	}
	return rest
}

// allowedPath reports whether rest falls under one of p's API roots.
func allowedPath(p *Provider, rest string) bool {
	for _, pre := range p.Paths {
		if strings.HasPrefix(rest, pre) || rest == strings.TrimSuffix(pre, "/") {
			return true
		}
	}
	return false
}

// fieldsOf finds the model a request names: in the path after the
// provider's ModelPath (Gemini's /v1beta/models/NAME:method, Azure's
// /openai/deployments/NAME/...), else in the JSON body, with what else the
// walk of the body found (nothing, where the path names the model: the
// body is not walked).
func fieldsOf(p *Provider, rest string, body []byte) (bodyFields, error) {
	if p.ModelPath != "" {
		if i := strings.Index(rest, p.ModelPath); i >= 0 {
			m := rest[i+len(p.ModelPath):]
			if j := strings.IndexAny(m, ":/"); j >= 0 {
				m = m[:j]
			}
			return bodyFields{model: m}, nil
		}
	}
	return readFields(body)
}

func scopeRule(err error) string {
	switch {
	case errors.Is(err, capability.ErrScopeProvider):
		return "provider"
	case errors.Is(err, capability.ErrScopeModel):
		return "model"
	}
	return "endpoint"
}

// tokenErrorText names why a token was refused without quoting it.
func tokenErrorText(err error) string {
	for _, e := range []error{capability.ErrTooLarge, capability.ErrMalformed, capability.ErrSignature,
		capability.ErrExpired, capability.ErrNotYetValid, capability.ErrAudience, capability.ErrIssuer, capability.ErrRevoked} {
		if errors.Is(err, e) {
			return e.Error()
		}
	}
	return "invalid token"
}

func upstreamErrText(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return err.Error()
}
