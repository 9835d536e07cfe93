package daemon

import (
	"context"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/tokfence/tokfence/daemon/audit"
	"github.com/tokfence/tokfence/daemon/localsock"
)

// connContext stores the peer of c in the connection's context, so handlers
// read it with PeerFrom.
func connContext(transport string) func(ctx context.Context, c net.Conn) context.Context {
	return func(ctx context.Context, c net.Conn) context.Context {
		ctx = withFramed(ctx, c)
		if p, ok := localsock.ConnPeer(c); ok {
			return localsock.WithPeer(ctx, p)
		}
		return localsock.WithPeer(ctx, localsock.Peer{UID: -1, Transport: transport})
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
func (r *refusedPeers) note(p localsock.Peer, now time.Time) (audit.Record, bool) {
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
