package localsock

import (
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"
)

// Connection caps: any local process can open connections to the daemon,
// so no one peer may hold more than its share of the daemon's file
// descriptors, and the control socket has a budget of its own that the
// proxy's listeners cannot use up (the owner can always run `tokfence
// kill`). Slow peers are cut by the header timeout and the body rate
// (readBody); the caps bound how many they can hold at once.
const (
	// MaxConnsPerPeer is what one process (on a Unix socket) or one uid
	// (on TCP; one address off Linux) may hold open at once: far above
	// an agent's concurrency, far below the descriptor limit.
	MaxConnsPerPeer = 256
	// MaxConnsPerListener bounds each listener whatever the peers.
	MaxConnsPerListener = 2048
)

// CapListener refuses, by closing at once, a connection past its peer's
// cap or the listener's. A refused connection costs no goroutine and
// holds its descriptor only for the Accept.
type CapListener struct {
	net.Listener
	key   func(net.Conn) string // the peer a connection counts against
	log   *slog.Logger
	mu    sync.Mutex
	n     map[string]int
	total int
	// lastLog rate-limits the refusal log line.
	lastLog time.Time
}

func NewCapListener(ln net.Listener, key func(net.Conn) string, log *slog.Logger) *CapListener {
	return &CapListener{Listener: ln, key: key, log: log, n: map[string]int{}}
}

// TCPPeerKey counts a TCP connection against the uid that dialled it
// where the kernel says (Linux), else against its remote address.
func TCPPeerKey(c net.Conn) string {
	if uid, ok := TCPPeerUID(c); ok {
		return "uid:" + strconv.Itoa(uid)
	}
	host, _, err := net.SplitHostPort(c.RemoteAddr().String())
	if err != nil {
		return c.RemoteAddr().String()
	}
	return host
}

// PIDPeerKey counts a socket connection against the process that opened it.
func PIDPeerKey(c net.Conn) string {
	if p, ok := ConnPeer(c); ok {
		return "pid:" + strconv.Itoa(p.PID)
	}
	return "?"
}

func (l *CapListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		k := l.key(c)
		l.mu.Lock()
		over := l.n[k] >= MaxConnsPerPeer || l.total >= MaxConnsPerListener
		if !over {
			l.n[k]++
			l.total++
		}
		logNow := over && time.Since(l.lastLog) > 10*time.Second
		if logNow {
			l.lastLog = time.Now()
		}
		l.mu.Unlock()
		if over {
			if logNow {
				l.log.Warn("refusing connections past the cap", "peer", k, "per_peer", MaxConnsPerPeer, "per_listener", MaxConnsPerListener)
			}
			c.Close()
			continue
		}
		return &cappedConn{Conn: c, release: func() { l.release(k) }}, nil
	}
}

func (l *CapListener) release(k string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.n[k]--; l.n[k] <= 0 {
		delete(l.n, k)
	}
	l.total--
}

// cappedConn gives its slot back once, on the first Close.
type cappedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *cappedConn) Close() error {
	c.once.Do(c.release)
	return c.Conn.Close()
}

// NetConn is the connection beneath.
func (c *cappedConn) NetConn() net.Conn { return c.Conn }
