package localsock

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

func WithPeer(ctx context.Context, p Peer) context.Context {
	return context.WithValue(ctx, peerKey{}, p)
}

// peerConn is a connection whose credentials were read once, at accept.
type peerConn struct {
	net.Conn
	peer Peer
}

// NetConn is the connection beneath.
func (c *peerConn) NetConn() net.Conn { return c.Conn }

// PeerListener reads each connection's kernel-verified credentials and
// closes those of a uid that is not allowed before HTTP sees a byte.
type PeerListener struct {
	net.Listener
	Allow func(Peer) bool
	Log   *slog.Logger
	// refused, if set, is told of each refused peer (the audit trail).
	Refused func(Peer)
}

// Accept returns the next allowed connection.
func (l *PeerListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		p, err := readPeer(c)
		if err != nil {
			l.Log.Warn("closing connection: cannot read peer credentials", "err", err)
			c.Close()
			continue
		}
		if !l.Allow(p) {
			l.Log.Warn("refused connection from a uid that is not allowed", "peer_uid", p.UID, "peer_pid", p.PID, "peer_exe", p.Exe)
			c.Close()
			if l.Refused != nil {
				l.Refused(p)
			}
			continue
		}
		return &peerConn{Conn: c, peer: p}, nil
	}
}

// ConnPeer returns the kernel-verified peer of c, if its listener read one.
func ConnPeer(c net.Conn) (Peer, bool) {
	for c != nil {
		if pc, ok := c.(*peerConn); ok {
			return pc.peer, true
		}
		u, ok := c.(interface{ NetConn() net.Conn })
		if !ok {
			break
		}
		c = u.NetConn()
	}
	return Peer{}, false
}
