package daemon

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"

	"github.com/tokfence/tokfence/capability"
	"github.com/tokfence/tokfence/daemon/api"
	"github.com/tokfence/tokfence/daemon/jsonscan"
)

// WebSockets, for the provider APIs that use them: the OpenAI Responses
// API takes a WebSocket at /v1/responses, and Codex CLI speaks nothing
// else to it. A WebSocket is a proxied request like any other until the
// upstream switches protocols: the handshake carries the capability token
// and passes every check a request does (admitRequest), goes on the audit
// trail before the upstream is dialled, and goes upstream with the
// allow-listed headers, the real key and the handshake's own headers, but
// never Sec-WebSocket-Extensions: with permessage-deflate the frames would
// be compressed past the sensors, so an upstream that answers with an
// extension anyway is refused. Once switched, wsRelay carries the frames
// and scans every message both ways.
//
// Go's transport sends a WebSocket upgrade over HTTP/1.1 even to an
// upstream that offers HTTP/2 (net/http dials such a request on a
// connection of its own with ALPN limited to http/1.1), so the one
// upstream transport, with its TLS settings and timeouts, serves both.

// errWSHandshake is an upstream whose side of the handshake is refused.
var errWSHandshake = errors.New("upstream websocket handshake refused")

// isUpgrade reports whether h asks to switch protocols in any way.
func isUpgrade(h http.Header) bool {
	return h.Get("Upgrade") != "" || strings.Contains(strings.ToLower(h.Get("Connection")), "upgrade") ||
		h.Get("HTTP2-Settings") != ""
}

// webSocketRoute reports whether r is a well-formed WebSocket handshake to
// a path where the provider's API takes one. Every other upgrade is
// refused at the front door.
func (d *Daemon) webSocketRoute(r *http.Request) bool {
	name, rest, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	p, ok := d.providers[name]
	return ok && p.webSocketPath("/"+rest) && webSocketHandshake(r)
}

// webSocketPath reports whether rest is one of p's WebSocket endpoints.
func (p *Provider) webSocketPath(rest string) bool { return slices.Contains(p.WebSocketPaths, rest) }

// webSocketHandshake reports whether r is an RFC 6455 opening handshake
// (§4.2.1) and nothing else: a GET over HTTP/1.1 without a body, asking
// for websocket alone, version 13, with a key of 16 bytes, and no h2c.
func webSocketHandshake(r *http.Request) bool {
	h := r.Header
	if r.Method != http.MethodGet || r.ProtoMajor != 1 || r.ProtoMinor < 1 || r.ContentLength != 0 || len(r.TransferEncoding) > 0 {
		return false
	}
	if up := h.Values("Upgrade"); len(up) != 1 || !strings.EqualFold(up[0], "websocket") || !hasToken(h.Values("Connection"), "upgrade") {
		return false
	}
	if v := h.Values("Sec-WebSocket-Version"); len(v) != 1 || v[0] != "13" {
		return false
	}
	key := h.Values("Sec-WebSocket-Key")
	if len(key) != 1 {
		return false
	}
	if b, err := base64.StdEncoding.DecodeString(key[0]); err != nil || len(b) != 16 {
		return false
	}
	return len(h.Values("HTTP2-Settings")) == 0
}

// hasToken reports whether the comma-separated header values vals name
// token, in any case.
func hasToken(vals []string, token string) bool {
	for _, v := range vals {
		for f := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(f), token) {
				return true
			}
		}
	}
	return false
}

// setHandshake adds the agent's handshake to out, the upstream request's
// allow-listed headers: the upgrade, the key and version, and the offered
// subprotocols unless one carries the token (a browser-style client may
// smuggle a credential there). Extensions are never offered.
func setHandshake(out, in http.Header, token string) {
	out.Set("Connection", "Upgrade")
	out.Set("Upgrade", "websocket")
	out.Set("Sec-WebSocket-Key", in.Get("Sec-WebSocket-Key"))
	out.Set("Sec-WebSocket-Version", "13")
	protos := in.Values("Sec-WebSocket-Protocol")
	if len(protos) > 0 && !slices.ContainsFunc(protos, func(v string) bool { return strings.Contains(v, token) }) {
		out["Sec-Websocket-Protocol"] = slices.Clone(protos)
	}
	out.Del("Accept-Encoding") // no body either way
}

// upgradeResponse checks the upstream's half of the handshake and puts a
// relay between the two connections as the reply's body, which
// ReverseProxy then copies both ways.
func (d *Daemon) upgradeResponse(resp *http.Response, f *forward) error {
	if !f.upgrade {
		return fmt.Errorf("%w: it switched protocols uninvited", errWSHandshake)
	}
	h, req := resp.Header, resp.Request.Header
	switch {
	case !strings.EqualFold(h.Get("Upgrade"), "websocket"):
		return fmt.Errorf("%w: it switched to %q", errWSHandshake, h.Get("Upgrade"))
	case h.Get("Sec-WebSocket-Accept") != wsAccept(req.Get("Sec-WebSocket-Key")):
		return fmt.Errorf("%w: its Sec-WebSocket-Accept does not answer the key", errWSHandshake)
	case len(h.Values("Sec-WebSocket-Extensions")) > 0:
		return fmt.Errorf("%w: it chose extensions that were not offered (%s); the sensors must see plain frames",
			errWSHandshake, strings.Join(h.Values("Sec-WebSocket-Extensions"), ", "))
	}
	if p := h.Get("Sec-WebSocket-Protocol"); p != "" && !hasToken(req.Values("Sec-WebSocket-Protocol"), p) {
		return fmt.Errorf("%w: it chose subprotocol %q, which was not offered", errWSHandshake, p)
	}
	d.scanReplyHeaders(h, f) // as for any reply: a header with a hit is dropped, a held key is RED
	if err := context.Cause(f.sess.Context()); err != nil {
		return err // capability.ErrRevoked: proxyError says the session was killed
	}
	up, ok := resp.Body.(io.ReadWriteCloser)
	if !ok {
		return fmt.Errorf("%w: the switched connection is not writable", errWSHandshake)
	}
	r := d.newRelay(f, up)
	f.rec.relay = r
	d.relays.add(r)
	resp.Body = r
	return nil
}

// wsCall reads what admission needs of an agent's message: whether it
// starts a model call (a Responses API response.create, whose body is a
// POST /v1/responses body with a "type") and the model it names. A
// message that names "type" twice is refused, as a body naming "model"
// twice is: parsers disagree on which one counts.
func wsCall(msg []byte) (call bool, model string, err error) {
	model, err = bodyModel(msg)
	if err != nil {
		return true, "", err // a model call whose model cannot be read
	}
	seen := false
	err = jsonscan.Members(msg, func(key, val []byte) error {
		if !jsonscan.IsKey(key, "type") {
			return nil
		}
		if seen {
			return errTypeTwice
		}
		seen = true
		if val[0] == '"' {
			t, _ := jsonscan.Unquote(val)
			call = t == "response.create"
		}
		return nil
	})
	if errors.Is(err, errBodyInvalid) {
		return false, model, nil // not a JSON object: no call the daemon can see, and no model
	}
	return call, model, err
}

var errTypeTwice = errors.New(`message names "type" more than once`)

// checkMessage decides, on each message the agent sends, as a request is
// decided: the token still valid, the risk state, the model within the
// grant's scope; and on a model call, the rate, budget and request limits,
// which it then spends. Each message is judged by the policy in force
// when it arrives, once. The handshake spent nothing: each
// response.create is a request of its own.
func (d *Daemon) checkMessage(f *forward, msg []byte) (model string, call bool, refusal *api.Error) {
	c, pol := f.claims, d.policy()
	if c.ExpiresAt != nil && !d.clock().Before(c.ExpiresAt.Time) {
		return "", false, &api.Error{Status: http.StatusUnauthorized, Type: errAuth,
			Message: "capability token refused: " + capability.ErrExpired.Error()}
	}
	if e := d.allowState(f, pol); e != nil {
		return "", false, e
	}
	call, model, err := wsCall(msg)
	if errors.Is(err, errTypeTwice) {
		return "", false, &api.Error{Status: http.StatusBadRequest, Type: errInvalid, Message: err.Error()}
	}
	if e := d.allowModel(f, c, model, err); e != nil {
		return "", false, e
	}
	if !call {
		return model, false, nil
	}
	e := d.allowRate(f, pol)
	if e == nil {
		e = d.allowSpend(f, c, model)
	}
	if e == nil {
		e = d.spend(f, pol)
	}
	if e != nil {
		return "", false, e
	}
	return model, true, nil
}

// closeFor is the close code that ends a connection for refusal e: 1013
// (try again later) for what waiting fixes, else 1008 (policy violation).
func closeFor(e *api.Error) int {
	if e.Status == http.StatusTooManyRequests {
		return closeTryAgain
	}
	return closePolicy
}

// relaySet is the live WebSocket relays. http.Server.Shutdown neither
// closes nor waits for them (their connections are hijacked), so the
// daemon ends them itself when it stops, and waits for their records.
type relaySet struct {
	mu      sync.Mutex
	live    map[*wsRelay]bool
	closing bool
	gone    chan struct{} // a relay left
}

func (s *relaySet) add(r *wsRelay) {
	s.mu.Lock()
	if s.live == nil {
		s.live, s.gone = map[*wsRelay]bool{}, make(chan struct{}, 1)
	}
	s.live[r] = true
	closing := s.closing
	s.mu.Unlock()
	if closing {
		r.end(closeGoingAway, "tokfence is shutting down")
	}
}

// remove runs once r's record is written.
func (s *relaySet) remove(r *wsRelay) {
	s.mu.Lock()
	delete(s.live, r)
	s.mu.Unlock()
	select {
	case s.gone <- struct{}{}:
	default:
	}
}

// shutdown ends every relay with 1001 (going away) and waits, until ctx
// is done, for them to finish.
func (s *relaySet) shutdown(ctx context.Context) {
	s.mu.Lock()
	s.closing = true
	live := slices.Collect(maps.Keys(s.live))
	s.mu.Unlock()
	for _, r := range live {
		r.end(closeGoingAway, "tokfence is shutting down")
	}
	for {
		s.mu.Lock()
		n := len(s.live)
		s.mu.Unlock()
		if n == 0 {
			return
		}
		select {
		case <-s.gone:
		case <-ctx.Done():
			return
		}
	}
}
