package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"

	"github.com/tokfence/tokfence/capability"
	"github.com/tokfence/tokfence/daemon/fence"
	"github.com/tokfence/tokfence/daemon/localsock"
)

// An agent socket is a fenced session's one way out. The daemon makes one
// per fenced session, in a 0700 directory of its own below the socket
// directory; the fence shows that directory, alone, to the agent. It
// serves the proxy routes and nothing else (no control route is in its
// table), and only to the token of its own session, so an agent that finds
// it can do no more than its grant allows. It closes when the session ends.

// agentSockets are the open agent sockets, by session.
type agentSockets struct {
	mu sync.Mutex
	m  map[string]*agentSocket
	// handler is the one front door all agent sockets share; the session
	// each serves comes from its connections' context.
	handler http.Handler
}

type agentSocket struct {
	dir string
	srv *http.Server
}

// agentSocketDir is where the agent socket of session sid lives.
func (d *Daemon) agentSocketDir(sid string) string {
	return filepath.Join(filepath.Dir(d.cfg.Socket), "agents", sid)
}

// openAgentSocket creates the agent socket of sess and serves it until the
// session ends or the daemon stops. It returns the socket's path.
func (d *Daemon) openAgentSocket(sess *capability.Session) (string, error) {
	dir := d.agentSocketDir(sess.ID)
	if err := localsock.SecureDir(filepath.Dir(dir), d.uid); err != nil {
		return "", fmt.Errorf("agent socket directory: %w", err)
	}
	if err := os.RemoveAll(dir); err != nil {
		return "", fmt.Errorf("clear %s: %w", dir, err)
	}
	if err := localsock.SecureDir(dir, d.uid); err != nil {
		return "", fmt.Errorf("agent socket directory: %w", err)
	}
	path := filepath.Join(dir, fence.AgentSocketName)
	if err := localsock.CheckSunPath(path); err != nil {
		os.RemoveAll(dir)
		return "", fmt.Errorf("agent socket: %w", err)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		os.RemoveAll(dir)
		return "", fmt.Errorf("listen on %s: %w", path, err)
	}
	// The 0700 directory is the guard; the socket's own mode is belt and braces.
	_ = os.Chmod(path, 0o600)
	srv := d.httpServer(d.agentSocks.door(d), "agent")
	srv.ConnContext = agentConnContext(sess.ID)
	as := &agentSocket{dir: dir, srv: srv}
	d.agentSocks.add(sess.ID, as)
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		_ = srv.Serve(localsock.NewCapListener(framedListener{&localsock.PeerListener{Listener: ln, Allow: d.allowPeer, Log: d.log, Refused: d.peerRefused}}, localsock.PIDPeerKey, d.log))
	}()
	stop := context.AfterFunc(sess.Context(), func() { d.closeAgentSocket(sess.ID) })
	context.AfterFunc(d.runCtx, func() {
		if stop() {
			d.closeAgentSocket(sess.ID)
		}
	})
	return path, nil
}

// closeAgentSocket stops serving sid's agent socket, cuts its connections
// and removes it.
func (d *Daemon) closeAgentSocket(sid string) {
	as := d.agentSocks.take(sid)
	if as == nil {
		return
	}
	_ = as.srv.Close()
	_ = os.RemoveAll(as.dir)
}

// door returns the agent sockets' shared front door, built on first use.
func (a *agentSockets) door(d *Daemon) http.Handler {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.handler == nil {
		a.handler = d.agentDoor()
	}
	return a.handler
}

func (a *agentSockets) add(sid string, as *agentSocket) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.m == nil {
		a.m = map[string]*agentSocket{}
	}
	a.m[sid] = as
}

func (a *agentSockets) take(sid string) *agentSocket {
	a.mu.Lock()
	defer a.mu.Unlock()
	as := a.m[sid]
	delete(a.m, sid)
	return as
}

// agentDoor serves the proxy only, like TCP: no control route exists on an
// agent socket. Browsers are refused as on TCP; the Host is not checked,
// since a fence has no DNS with which to rebind a name.
func (d *Daemon) agentDoor() http.Handler {
	return &frontDoor{d: d, mux: d.buildMux(d.proxyRoutes()), agent: true}
}

// agentConnContext marks each connection of sid's agent socket with the
// session it may speak for.
func agentConnContext(sid string) func(context.Context, net.Conn) context.Context {
	return func(ctx context.Context, c net.Conn) context.Context {
		ctx = withFramed(ctx, c)
		p, ok := localsock.ConnPeer(c)
		if !ok {
			return localsock.WithPeer(ctx, localsock.Peer{UID: -1, Transport: "agent", Session: sid})
		}
		p.Transport, p.Session = "agent", sid
		return localsock.WithPeer(ctx, p)
	}
}

// errForeignSession refuses a token of another session on an agent socket.
var errForeignSession = errors.New("this agent socket serves only its own session's token")
