package daemon

import (
	"net/http"
	"strings"
)

// perm is what a route demands of its caller.
type perm int

const (
	// permAdmin is the control API: the daemon's own uid (or allowed root)
	// over the Unix socket, never TCP, and never a capability token.
	permAdmin perm = iota + 1
	// permAgent is the proxy: any served peer, with a capability token that
	// the handler verifies on every request.
	permAgent
)

// route is one entry of the routing table. Every handler is reached only
// through its table entry, so no handler can forget its permission check.
type route struct {
	pattern string
	perm    perm
	handle  http.HandlerFunc
}

func (d *Daemon) controlRoutes() []route {
	return []route{
		{"GET /v1/status", permAdmin, d.handleStatus},
		{"POST /v1/grant", permAdmin, d.handleGrant},
		{"GET /v1/sessions", permAdmin, d.handleSessions},
		{"POST /v1/kill", permAdmin, d.handleKill},
	}
}

func (d *Daemon) proxyRoutes() []route {
	return []route{
		{"/{provider}/{rest...}", permAgent, d.handleProxy},
	}
}

func (d *Daemon) buildMux(routes ...[]route) *http.ServeMux {
	mux := http.NewServeMux()
	for _, rs := range routes {
		for _, r := range rs {
			mux.Handle(r.pattern, d.guard(r.perm, r.handle))
		}
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, errNotFound, "no such route: "+r.Method+" "+r.URL.Path)
	})
	return mux
}

// socketMux serves the control API and the proxy.
func (d *Daemon) socketMux() http.Handler { return d.buildMux(d.controlRoutes(), d.proxyRoutes()) }

// tcpMux serves the proxy only: the control API is never on TCP.
func (d *Daemon) tcpMux() http.Handler { return d.buildMux(d.proxyRoutes()) }

// frontHandler refuses what no route may see, before the mux can clean or
// redirect the path: CONNECT, absolute-form targets, protocol upgrades
// (h2c, websockets) and paths with encoded separators or dot segments.
func (d *Daemon) frontHandler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodConnect {
			writeError(w, http.StatusMethodNotAllowed, errInvalid, "CONNECT is not supported")
			return
		}
		if r.Header.Get("Upgrade") != "" || strings.Contains(strings.ToLower(r.Header.Get("Connection")), "upgrade") ||
			r.Header.Get("HTTP2-Settings") != "" {
			writeError(w, http.StatusBadRequest, errInvalid, "protocol upgrades are refused")
			return
		}
		if err := checkRequestURI(r.RequestURI); err != nil {
			writeError(w, http.StatusBadRequest, errInvalid, err.Error())
			return
		}
		next.ServeHTTP(w, r)
	})
}

// guard enforces perm before h runs.
func (d *Daemon) guard(p perm, h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		peer, ok := PeerFrom(r.Context())
		switch p {
		case permAdmin:
			if !ok || peer.Transport != "unix" || !d.allowPeer(peer) {
				writeError(w, http.StatusForbidden, errPermission, "the control API is served only to the daemon's own user on its Unix socket")
				return
			}
			if peer.PID > 0 && d.agents.under(peer.PID) {
				writeError(w, http.StatusForbidden, errPermission, "the control API is not served to processes running under `tokfence exec`: an agent cannot mint, list or revive tokens")
				return
			}
			if hasCredentialHeader(r.Header) {
				writeError(w, http.StatusForbidden, errPermission, "the control API does not accept credentials: a capability token is never authority to manage tokfence")
				return
			}
		case permAgent:
			if !ok || (peer.Transport == "unix" && !d.allowPeer(peer)) {
				writeError(w, http.StatusForbidden, errPermission, "peer not allowed")
				return
			}
		default:
			writeError(w, http.StatusInternalServerError, errInternal, "route has no permission")
			return
		}
		h(w, r)
	})
}

// hasCredentialHeader reports whether h carries anything that looks like an
// API credential (in any case or spelling).
func hasCredentialHeader(h http.Header) bool {
	for k := range h {
		if isCredentialHeader(k) {
			return true
		}
	}
	return false
}
