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
	"net/http/httputil"
	"os"
	"sync"
	"time"

	"github.com/tokfence/tokfence/capability"
	"github.com/tokfence/tokfence/daemon/audit"
	"github.com/tokfence/tokfence/daemon/hint"
	"github.com/tokfence/tokfence/daemon/layout"
	"github.com/tokfence/tokfence/daemon/localsock"
	"github.com/tokfence/tokfence/daemon/meter"
	"github.com/tokfence/tokfence/daemon/proc"
	"github.com/tokfence/tokfence/keystore"
	"github.com/tokfence/tokfence/policy"
	"github.com/tokfence/tokfence/sensor"
)

// Options are what New needs besides the configuration.
type Options struct {
	Logger   *slog.Logger
	Keystore *keystore.Store
	Clock    func() time.Time // nil: time.Now
}

// Daemon is one running tokfence daemon.
type Daemon struct {
	cfg       Config
	log       *slog.Logger
	keys      *keystore.Store
	clock     func() time.Time
	uid       int
	activated bool // serving a socket systemd passed, which stays when we stop
	started   time.Time
	ready     chan struct{}
	providers Providers
	transport http.RoundTripper
	proxy     *httputil.ReverseProxy

	auth     *capability.Authority
	revs     *capability.Revocations
	sessions *capability.Registry
	live     sessionTable
	fpKey    []byte
	keyCache keyCache
	book     secretBook
	sensors  sensor.Set
	audit    auditSink
	prices   *meter.Table
	meter    *meter.Meter
	policyW  *policy.Watcher
	tcpAddr  string
	agents   proc.Roots
	refused  refusedPeers
	// testOnlyBodyGrace is bodyGrace; tests shorten it.
	testOnlyBodyGrace time.Duration
	// agentSocks are the fenced sessions' agent sockets.
	agentSocks agentSockets
	relays     relaySet

	runCtx context.Context
	stopBG context.CancelFunc
	wg     sync.WaitGroup
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
	providers, err := BuildProviders(cfg.Providers)
	if err != nil {
		return nil, err
	}
	prices, err := meter.LoadPrices(cfg.PricingFile, cfg.Pricing)
	if err != nil {
		return nil, err
	}
	for _, w := range prices.Warnings() {
		opts.Logger.Warn("price table entry skipped", "table", prices.Source(), "reason", w)
	}
	d := &Daemon{
		cfg:               cfg,
		log:               opts.Logger,
		keys:              opts.Keystore,
		clock:             opts.Clock,
		uid:               os.Getuid(),
		ready:             make(chan struct{}),
		providers:         providers,
		prices:            prices,
		meter:             meter.New(),
		transport:         newUpstreamTransport(cfg),
		runCtx:            context.Background(),
		testOnlyBodyGrace: bodyGrace,
	}
	d.proxy = d.newReverseProxy()
	return d, nil
}

// Ready is closed once the socket accepts connections.
func (d *Daemon) Ready() <-chan struct{} { return d.ready }

// policy returns the policy in force.
func (d *Daemon) policy() *policy.Policy {
	if d.policyW == nil {
		return policy.Default()
	}
	return d.policyW.Current()
}

// Run serves until ctx is done, then shuts down gracefully and removes the
// socket. It returns an error if the daemon cannot start.
func (d *Daemon) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	d.runCtx, d.stopBG = ctx, cancel
	if err := localsock.SecureDir(d.cfg.StateDir, d.uid); err != nil {
		return fmt.Errorf("state dir: %w", err)
	}
	// One daemon per state directory, decided before anything in it is
	// opened: a second one appending to the live audit trail, or serving
	// sessions whose kills the first one would never see, breaks both.
	stateLock, err := localsock.LockDir(d.cfg.StateDir)
	if errors.Is(err, localsock.ErrAlreadyRunning) {
		return hint.Wrapf(fmt.Errorf("state dir %s: %w", d.cfg.StateDir, localsock.ErrAlreadyRunning),
			"a daemon is already using this state directory; stop it, or give this one its own --state-dir")
	}
	if err != nil {
		return fmt.Errorf("state dir: %w", err)
	}
	defer stateLock.Release()
	defer func() {
		if d.live.grants != nil {
			d.live.grants.close()
		}
	}()
	if err := d.prepare(ctx); err != nil {
		return err
	}
	defer d.audit.log.Close()
	ln, lock, err := localsock.ListenUnix(d.cfg.Socket, d.uid)
	if err != nil {
		return err
	}
	defer lock.Release()
	d.activated = lock.Activated()
	servers := []*http.Server{d.httpServer(d.socketDoor(), "unix")}
	listeners := []net.Listener{localsock.NewCapListener(framedListener{&localsock.PeerListener{Listener: ln, Allow: d.allowPeer, Log: d.log, Refused: d.peerRefused}}, localsock.PIDPeerKey, d.log)}
	if d.cfg.TCP != "" {
		tln, err := d.listenTCP()
		if err != nil {
			ln.Close()
			return err
		}
		_, port, _ := net.SplitHostPort(d.tcpAddr)
		servers = append(servers, d.httpServer(d.tcpDoor(port), "tcp"))
		listeners = append(listeners, localsock.NewCapListener(framedListener{tln}, localsock.TCPPeerKey, d.log))
	}
	return d.serve(ctx, servers, listeners)
}

// prepare does everything that can fail before a listener exists.
func (d *Daemon) prepare(ctx context.Context) error {
	if err := proc.Harden(); err != nil {
		return fmt.Errorf("harden process: %w", err)
	}
	if err := d.keys.Probe(ctx); err != nil {
		return err
	}
	if err := d.setupCapabilities(ctx); err != nil {
		return err
	}
	g, err := openGrants(layout.StateDir(d.cfg.StateDir).Grants(), layout.StateDir(d.cfg.StateDir).LegacyGrants())
	if err != nil {
		return err
	}
	d.live.grants = g
	if err := d.setupPolicy(); err != nil {
		return err
	}
	alog, err := audit.Open(layout.StateDir(d.cfg.StateDir).Audit(), audit.Options{Clock: d.clock,
		NoSync: d.cfg.AuditSync == AuditSyncNever, SyncWindow: d.cfg.auditSyncWindow(),
		OnAsyncFail: func(r audit.Record, err error) {
			d.log.Error("audit record not committed", "event", r.Event, "seq", r.Seq, "session", r.Session, "err", err)
		}})
	if err != nil {
		return hint.Wrapf(fmt.Errorf("audit trail: %w", err),
			"inspect it with `tokfence audit verify`; to start a new trail, move %s aside", layout.StateDir(d.cfg.StateDir).Audit())
	}
	d.audit.log = alog
	if err := d.meter.Rebuild(layout.StateDir(d.cfg.StateDir).Audit(), d.clock()); err != nil {
		return fmt.Errorf("rebuild usage counters from the audit trail: %w", err)
	}
	// Watch the key index before the first look, so no change falls
	// between them; then fill the key cache stamp, the sensors' keys and
	// the audited key set.
	watched, err := d.keys.Index().Watch(d.runCtx, d.markKeysStale)
	if err != nil {
		return hint.Wrapf(err, "tokfence must see keys change to stop using a removed one; "+
			"raise fs.inotify.max_user_watches or max_user_instances if they are used up")
	}
	d.wg.Add(1)
	go func() { defer d.wg.Done(); <-watched }()
	d.keyCache.stamp = d.keys.Index().Stamp()
	d.keyCache.keys = map[string]keystore.Secret{}
	d.keyCache.seen = nil
	d.refreshKeys(ctx)
	if d.sensors.Load() == nil {
		return fmt.Errorf("load keys for the sensors: see the log")
	}
	return nil
}

func (d *Daemon) listenTCP() (net.Listener, error) {
	if err := localsock.CheckLoopbackAddr(d.cfg.TCP); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", d.cfg.TCP)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", d.cfg.TCP, err)
	}
	d.tcpAddr = ln.Addr().String()
	return ln, nil
}

// serve runs the servers until ctx is done or one fails.
func (d *Daemon) serve(ctx context.Context, servers []*http.Server, lns []net.Listener) error {
	d.started = d.clock()
	errc := make(chan error, len(servers))
	for i, srv := range servers {
		go func() { errc <- srv.Serve(lns[i]) }()
	}
	d.startBackground(ctx)
	d.appendAudit(audit.Record{Event: audit.EventDaemonStart, Detail: map[string]string{
		"version": Version, "socket": d.cfg.Socket, "tcp": d.tcpAddr, "policy": d.policy().Source(),
		"prices": d.prices.Describe()}})
	d.log.Info("daemon listening", "socket", d.cfg.Socket, "tcp", d.tcpAddr, "state_dir", d.cfg.StateDir,
		"allow_root", d.cfg.AllowRoot, "policy", d.policy().Source(), "prices", d.prices.Describe(), "pid", os.Getpid())
	close(d.ready)
	var err error
	select {
	case err = <-errc:
		err = fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	d.log.Info("daemon shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, srv := range servers {
		if srv.Shutdown(sctx) != nil {
			srv.Close()
		}
	}
	d.relays.shutdown(sctx)
	d.stopBG()
	d.wg.Wait()
	d.appendAudit(audit.Record{Event: audit.EventDaemonStop})
	if !d.activated {
		_ = os.Remove(d.cfg.Socket) // closing the listener unlinks it; make sure
	}
	return err
}

// peerRefused puts a refused socket peer on the audit trail, rate limited.
func (d *Daemon) peerRefused(p localsock.Peer) {
	if rec, ok := d.refused.note(p, d.clock()); ok {
		d.appendAuditAsync(rec)
	}
}

// allowPeer reports whether a socket peer may be served: the daemon's own
// uid, or root when the configuration allows it.
func (d *Daemon) allowPeer(p localsock.Peer) bool {
	return p.UID == d.uid || (p.UID == 0 && d.cfg.AllowRoot)
}

func (d *Daemon) httpServer(h http.Handler, transport string) *http.Server {
	return &http.Server{
		Handler:           h,
		ConnContext:       connContext(transport),
		ReadHeaderTimeout: d.cfg.HeaderTimeout.Duration, // slowloris: headers must arrive promptly
		ReadTimeout:       0,                            // bodies are bounded by size; a per-read deadline would cut uploads
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10, // no legitimate provider call needs more
		ErrorLog:          slog.NewLogLogger(d.log.Handler(), slog.LevelDebug),
		BaseContext:       func(net.Listener) context.Context { return context.Background() },
	}
}
