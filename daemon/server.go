// Package daemon is the Tokfence daemon: the listeners (a Unix socket whose
// peers are identified by kernel-verified credentials, and an optional
// loopback TCP listener), the control API, the provider proxy and the audit
// writer, and the typed Client the CLI uses to speak to it.
//
// Threat model: any process of any local user may try to connect. The
// socket's directory (0700, owned by us, never a symlink) and a per-connection
// uid check keep every other uid out; the control API additionally demands the
// daemon's own uid and is never served on TCP. Provider keys are read from the
// keystore when needed and appear only in the upstream auth header: never in a
// log line, error, reply or state file.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/tokfence/tokfence/keystore"
)

// Options are what New needs besides the configuration.
type Options struct {
	Logger   *slog.Logger
	Keystore *keystore.Store
	Clock    func() time.Time // nil: time.Now
}

// Daemon is one running tokfence daemon.
type Daemon struct {
	cfg     Config
	log     *slog.Logger
	keys    *keystore.Store
	clock   func() time.Time
	uid     int
	started time.Time
	ready   chan struct{}
}

// New validates cfg and returns a daemon ready to Run.
func New(cfg Config, opts Options) (*Daemon, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if opts.Keystore == nil {
		return nil, errors.New("daemon: no keystore")
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	return &Daemon{
		cfg:   cfg,
		log:   opts.Logger,
		keys:  opts.Keystore,
		clock: opts.Clock,
		uid:   os.Getuid(),
		ready: make(chan struct{}),
	}, nil
}

// Ready is closed once the socket accepts connections.
func (d *Daemon) Ready() <-chan struct{} { return d.ready }

// Run serves until ctx is done, then shuts down gracefully and removes the
// socket. It returns an error if the daemon cannot start.
func (d *Daemon) Run(ctx context.Context) error {
	if err := harden(); err != nil {
		return fmt.Errorf("harden process: %w", err)
	}
	if err := secureDir(d.cfg.StateDir, d.uid); err != nil {
		return fmt.Errorf("state dir: %w", err)
	}
	if err := d.keys.Probe(ctx); err != nil {
		return err
	}
	ln, lock, err := listenUnix(d.cfg.Socket, d.uid)
	if err != nil {
		return err
	}
	defer lock.release()
	d.started = d.clock()
	pl := &peerListener{Listener: ln, allow: d.allowPeer, log: d.log}
	srv := d.httpServer(d.socketHandler(), "unix")
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(pl) }()
	d.log.Info("daemon listening", "socket", d.cfg.Socket, "state_dir", d.cfg.StateDir,
		"strict", d.cfg.Strict, "allow_root", d.cfg.AllowRoot, "pid", os.Getpid())
	if !d.cfg.Strict {
		d.log.Warn("NON-STRICT MODE: requests without a capability token are served on the socket; any process of this uid can spend your keys")
	}
	close(d.ready)
	select {
	case err := <-errc:
		return fmt.Errorf("serve socket: %w", err)
	case <-ctx.Done():
	}
	d.log.Info("daemon shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
	}
	// Closing the listener unlinks the socket; make sure even if it did not.
	_ = os.Remove(d.cfg.Socket)
	return nil
}

// allowPeer reports whether a socket peer may be served: the daemon's own
// uid, or root when the configuration allows it.
func (d *Daemon) allowPeer(p Peer) bool {
	return p.UID == d.uid || (p.UID == 0 && d.cfg.AllowRoot)
}

func (d *Daemon) httpServer(h http.Handler, transport string) *http.Server {
	return &http.Server{
		Handler:           h,
		ConnContext:       connContext(transport),
		ReadHeaderTimeout: 10 * time.Second, // slowloris: headers must arrive promptly
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10, // no legitimate provider call needs more
		ErrorLog:          slog.NewLogLogger(d.log.Handler(), slog.LevelDebug),
		BaseContext:       func(net.Listener) context.Context { return context.Background() },
	}
}
