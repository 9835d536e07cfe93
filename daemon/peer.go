package daemon

import (
	"context"
	"log/slog"
	"net"
)

// Peer is who is on the other end of a connection. On the Unix socket the
// kernel vouches for UID and PID; on loopback TCP nothing is known and UID
// is -1.
type Peer struct {
	UID       int    `json:"uid"`
	PID       int    `json:"pid,omitempty"`
	Exe       string `json:"exe,omitempty"`
	Transport string `json:"transport"` // "unix", "tcp" or "agent" (a fenced session's agent socket)
	// Session is, on an agent socket, the one session whose token it serves.
	Session string `json:"session,omitempty"`
}

type peerKey struct{}

// PeerFrom returns the peer stored in ctx by the listener.
func PeerFrom(ctx context.Context) (Peer, bool) {
	p, ok := ctx.Value(peerKey{}).(Peer)
	return p, ok
}

func withPeer(ctx context.Context, p Peer) context.Context {
	return context.WithValue(ctx, peerKey{}, p)
}

// peerConn is a connection whose credentials were read once, at accept.
type peerConn struct {
	net.Conn
	peer Peer
}

// peerListener reads each connection's kernel-verified credentials and
// closes those of a uid that is not allowed before HTTP sees a byte.
type peerListener struct {
	net.Listener
	allow func(Peer) bool
	log   *slog.Logger
}

// Accept returns the next allowed connection.
func (l *peerListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		p, err := readPeer(c)
		if err != nil {
			l.log.Warn("closing connection: cannot read peer credentials", "err", err)
			c.Close()
			continue
		}
		if !l.allow(p) {
			l.log.Warn("refused connection from a uid that is not allowed", "peer_uid", p.UID, "peer_pid", p.PID, "peer_exe", p.Exe)
			c.Close()
			continue
		}
		return &peerConn{Conn: c, peer: p}, nil
	}
}

// connContext stores the peer of c in the connection's context, so handlers
// read it with PeerFrom.
func connContext(transport string) func(ctx context.Context, c net.Conn) context.Context {
	return func(ctx context.Context, c net.Conn) context.Context {
		if pc, ok := c.(*peerConn); ok {
			return withPeer(ctx, pc.peer)
		}
		return withPeer(ctx, Peer{UID: -1, Transport: transport})
	}
}
