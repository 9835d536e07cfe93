package daemon

import (
	"net/http"
)

// perm is what a route demands of its caller.
type perm int

const (
	// permAdmin is the control API: the daemon's own uid (or allowed root)
	// over the Unix socket, never TCP, and never a capability token.
	permAdmin perm = iota + 1
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
	}
}

// socketHandler serves the control API and (later) the proxy on the socket.
func (d *Daemon) socketHandler() http.Handler {
	mux := http.NewServeMux()
	for _, r := range d.controlRoutes() {
		mux.Handle(r.pattern, d.guard(r.perm, r.handle))
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, errNotFound, "no such route: "+r.Method+" "+r.URL.Path)
	})
	return mux
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
			if hasCredentialHeader(r.Header) {
				writeError(w, http.StatusForbidden, errPermission, "the control API does not accept credentials: a capability token is never authority to manage tokfence")
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
