package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/tokfence/tokfence/daemon/audit"
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

// NetConn is the connection beneath.
func (c *peerConn) NetConn() net.Conn { return c.Conn }

// peerListener reads each connection's kernel-verified credentials and
// closes those of a uid that is not allowed before HTTP sees a byte.
type peerListener struct {
	net.Listener
	allow func(Peer) bool
	log   *slog.Logger
	// refused, if set, is told of each refused peer (the audit trail).
	refused func(Peer)
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
			if l.refused != nil {
				l.refused(p)
			}
			continue
		}
		return &peerConn{Conn: c, peer: p}, nil
	}
}

// connPeer returns the kernel-verified peer of c, if its listener read one.
func connPeer(c net.Conn) (Peer, bool) {
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

// connContext stores the peer of c in the connection's context, so handlers
// read it with PeerFrom.
func connContext(transport string) func(ctx context.Context, c net.Conn) context.Context {
	return func(ctx context.Context, c net.Conn) context.Context {
		ctx = withFramed(ctx, c)
		if p, ok := connPeer(c); ok {
			return withPeer(ctx, p)
		}
		return withPeer(ctx, Peer{UID: -1, Transport: transport})
	}
}

// refusedPeers puts refused connections on the audit trail, at most one
// record per uid a minute (with how many were suppressed since), so that
// another user knocking is on the record without a flood of them
// filling the disk.
type refusedPeers struct {
	mu   sync.Mutex
	last map[int]refusedUID
}

type refusedUID struct {
	at         time.Time
	suppressed int
}

// refusedEvery is how often one uid's refusals are recorded.
const refusedEvery = time.Minute

// maxRefusedUIDs bounds the table; past it, all further uids share one
// entry (uid -2) for rate limiting.
const maxRefusedUIDs = 1024

// note returns the record to write for a refusal of p at now, or false
// while the uid is rate limited.
func (r *refusedPeers) note(p Peer, now time.Time) (audit.Record, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.last == nil {
		r.last = map[int]refusedUID{}
	}
	key := p.UID
	if _, ok := r.last[key]; !ok && len(r.last) >= maxRefusedUIDs {
		key = -2
	}
	e, seen := r.last[key]
	if seen && now.Sub(e.at) < refusedEvery {
		e.suppressed++
		r.last[key] = e
		return audit.Record{}, false
	}
	r.last[key] = refusedUID{at: now}
	uid := p.UID
	rec := audit.Record{Event: audit.EventPeerRefused, PeerUID: &uid, PeerPID: p.PID, PeerExe: p.Exe,
		Reason: "the uid is not allowed on the socket", Detail: map[string]string{"transport": p.Transport}}
	if e.suppressed > 0 {
		rec.Detail["suppressed"] = fmt.Sprint(e.suppressed)
	}
	return rec, true
}
