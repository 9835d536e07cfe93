package daemon

import (
	"net/http"
	"strings"

	"github.com/tokfence/tokfence/daemon/api"
	"github.com/tokfence/tokfence/daemon/localsock"
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
	handle  func(*Daemon, http.ResponseWriter, *http.Request)
}

func (d *Daemon) controlRoutes() []route {
	return []route{
		{"GET /v1/status", permAdmin, (*Daemon).handleStatus},
		{"POST /v1/grant", permAdmin, (*Daemon).handleGrant},
		{"POST /v1/renew", permAdmin, (*Daemon).handleRenew},
		{"GET /v1/sessions", permAdmin, (*Daemon).handleSessions},
		{"POST /v1/kill", permAdmin, (*Daemon).handleKill},
		{"POST /v1/keys/reload", permAdmin, (*Daemon).handleKeysReload},
		{"POST /v1/audit-hash", permAdmin, (*Daemon).handleAuditHash},
	}
}

func (d *Daemon) proxyRoutes() []route {
	return []route{
		{"/{provider}/{rest...}", permAgent, (*Daemon).handleProxy},
	}
}

func (d *Daemon) buildMux(routes ...[]route) *http.ServeMux {
	mux := http.NewServeMux()
	for _, rs := range routes {
		for _, r := range rs {
			mux.Handle(r.pattern, &guarded{d: d, perm: r.perm, handle: r.handle})
		}
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		d.routeError(w, r, http.StatusNotFound, errNotFound, "no such route: "+r.Method+" "+r.URL.Path)
	})
	return mux
}

// The request path is kept shallow on purpose. A streamed reply keeps its
// handler goroutine parked inside ReverseProxy for the stream's whole life,
// and net/http writes the reply's header from the deepest point of that
// path; if the handler's frames push that point past the goroutine's 8 KiB
// stack, the stack doubles to 16 KiB and stays so. So each layer below is
// one small frame whose checks run in a callee that has returned before the
// next layer runs, and handlers are called directly, not through method
// values. TestHeldStreamStackStaysSmall asserts the result (a doubled
// stack fails it); BenchmarkHeldStreams and the load harness measure it.

// frontDoor is a listener's handler. It refuses what no route may see,
// then routes through mux.
type frontDoor struct {
	d   *Daemon
	mux *http.ServeMux
	// tcpHosts is nil on the Unix socket; on TCP it holds the Host values
	// that name the listener itself.
	tcpHosts map[string]bool
	tcpPort  string
	// agent is set on a fenced session's agent socket, where browsers
	// are refused as on TCP.
	agent bool
}

// socketDoor serves the control API and the proxy.
func (d *Daemon) socketDoor() http.Handler {
	return &frontDoor{d: d, mux: d.buildMux(d.controlRoutes(), d.proxyRoutes())}
}

// tcpDoor serves the proxy only: the control API is never on TCP.
// Loopback TCP is hostile ground: any local user and any web page (through
// DNS rebinding) can reach it, so requests with an Origin are refused and
// the Host must name the listener itself.
func (d *Daemon) tcpDoor(port string) http.Handler {
	return &frontDoor{d: d, mux: d.buildMux(d.proxyRoutes()), tcpPort: port, tcpHosts: map[string]bool{
		"127.0.0.1:" + port: true, "localhost:" + port: true, "[::1]:" + port: true,
	}}
}

func (fd *frontDoor) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if fd.screen(w, r) {
		fd.mux.ServeHTTP(w, r)
	}
}

// screen refuses, before the mux can clean or redirect the path, CONNECT,
// absolute-form targets, protocol upgrades (h2c, and websockets but for
// a well-formed handshake on a provider's WebSocket path) and paths with
// encoded separators or dot segments; on TCP also browsers and foreign
// Host headers. It writes the refusal itself.
func (fd *frontDoor) screen(w http.ResponseWriter, r *http.Request) bool {
	// First, so that every request on a followed connection is counted.
	if why := nextFraming(r).suspect(); why != "" {
		w.Header().Set("Connection", "close")
		fd.d.routeError(w, r, http.StatusBadRequest, errInvalid, why)
		return false
	}
	if (fd.tcpHosts != nil || fd.agent) && (r.Header.Get("Origin") != "" || r.Header.Get("Sec-Fetch-Site") != "") {
		fd.d.routeError(w, r, http.StatusForbidden, errPermission, "requests from browsers (with an Origin) are refused")
		return false
	}
	if fd.tcpHosts != nil {
		if !fd.tcpHosts[strings.ToLower(r.Host)] {
			fd.d.routeError(w, r, http.StatusMisdirectedRequest, errPermission, "unexpected Host header; use 127.0.0.1:"+fd.tcpPort)
			return false
		}
	}
	if r.Method == http.MethodConnect {
		fd.d.routeError(w, r, http.StatusMethodNotAllowed, errInvalid, "CONNECT is not supported")
		return false
	}
	if isUpgrade(r.Header) && !fd.d.webSocketRoute(r) {
		fd.d.routeError(w, r, http.StatusBadRequest, errInvalid, "protocol upgrades are refused")
		return false
	}
	if err := checkRequestURI(r.RequestURI); err != nil {
		fd.d.routeError(w, r, http.StatusBadRequest, errInvalid, err.Error())
		return false
	}
	return true
}

// guarded is a route's handler behind its permission.
type guarded struct {
	d      *Daemon
	perm   perm
	handle func(*Daemon, http.ResponseWriter, *http.Request)
}

func (g *guarded) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if g.d.permit(w, r, g.perm) {
		g.handle(g.d, w, r)
	}
}

// permit enforces p; it writes the refusal itself.
func (d *Daemon) permit(w http.ResponseWriter, r *http.Request, p perm) bool {
	peer, ok := localsock.PeerFrom(r.Context())
	switch p {
	case permAdmin:
		if !ok || peer.Transport != "unix" || !d.allowPeer(peer) {
			writeError(w, http.StatusForbidden, errPermission, "the control API is served only to the daemon's own user on its Unix socket")
			return false
		}
		if peer.PID > 0 && d.agents.Under(peer.PID) {
			writeError(w, http.StatusForbidden, errPermission, "the control API is not served to processes running under `tokfence exec`: an agent cannot mint, list or revive tokens")
			return false
		}
		if hasCredentialHeader(r.Header) {
			writeError(w, http.StatusForbidden, errPermission, "the control API does not accept credentials: a capability token is never authority to manage tokfence")
			return false
		}
		return true
	case permAgent:
		if !ok || (peer.Transport != "tcp" && !d.allowPeer(peer)) {
			d.routeError(w, r, http.StatusForbidden, errPermission, "peer not allowed")
			return false
		}
		return true
	}
	writeError(w, http.StatusInternalServerError, errInternal, "route has no permission")
	return false
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

// routeError writes a refusal made before a route's handler runs: in the
// error shape of the provider the path names, if it names one (so that an
// SDK shows it), else in the daemon's own.
func (d *Daemon) routeError(w http.ResponseWriter, r *http.Request, status int, typ, msg string) {
	name, _, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	if p, ok := d.providers[name]; ok {
		writeProviderError(w, p.API, &api.Error{Status: status, Type: typ, Message: msg})
		return
	}
	writeError(w, status, typ, msg)
}
