package daemon

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/tokfence/tokfence/daemon/layout"
	"github.com/tokfence/tokfence/keystore"
)

// syncBuffer is a goroutine-safe log sink for tests.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// reset drops what was logged so far (a long benchmark's log would
// otherwise be the largest thing in its process).
func (s *syncBuffer) reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b.Reset()
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// testEnv is one daemon under test with its own short temp dirs (a socket
// path must fit in sun_path, and t.TempDir paths can be long).
type testEnv struct {
	t      testing.TB
	cfg    Config
	d      *Daemon
	keys   *keystore.Store
	mem    *keystore.Memory
	logs   *syncBuffer
	clock  *fakeClock
	cancel context.CancelFunc
	done   chan error
}

func shortTempDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "tf")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func testConfig(t testing.TB) Config {
	base := shortTempDir(t)
	cfg := Defaults()
	cfg.Socket = filepath.Join(base, "run", "tf.sock")
	cfg.StateDir = filepath.Join(base, "state")
	return cfg
}

// newEnv builds a daemon on a memory keystore without starting it.
func newEnv(t testing.TB, cfg Config) *testEnv {
	t.Helper()
	mem := keystore.NewMemory()
	return newEnvWith(t, cfg, mem, &fakeClock{now: time.Now()})
}

// newEnvWith builds a daemon over an existing keychain and clock: a
// restart in tests is a new daemon on the same state dir, keychain and clock.
func newEnvWith(t testing.TB, cfg Config, mem *keystore.Memory, clock *fakeClock) *testEnv {
	t.Helper()
	keys := keystore.New(mem, keystore.NewIndex(layout.StateDir(cfg.StateDir).KeyIndex()), time.Second)
	logs := &syncBuffer{}
	level := slog.LevelDebug // tests read the debug lines
	if _, ok := t.(*testing.B); ok {
		level = slog.LevelInfo // benchmarks log as the daemon does by default
	}
	d, err := New(cfg, Options{Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: level})),
		Keystore: keys, Clock: clock.Now})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return &testEnv{t: t, cfg: cfg, d: d, keys: keys, mem: mem, logs: logs, clock: clock}
}

// start runs the daemon and waits until it is ready or fails.
func (e *testEnv) start() error {
	ctx, cancel := context.WithCancel(context.Background())
	e.cancel = cancel
	e.done = make(chan error, 1)
	go func() { e.done <- e.d.Run(ctx) }()
	select {
	case <-e.d.Ready():
		e.t.Cleanup(e.stop)
		return nil
	case err := <-e.done:
		cancel()
		return err
	case <-time.After(10 * time.Second):
		cancel()
		return errors.New("daemon did not become ready")
	}
}

func (e *testEnv) stop() {
	if e.cancel == nil {
		return
	}
	e.cancel()
	e.cancel = nil
	select {
	case err := <-e.done:
		if err != nil {
			e.t.Errorf("Run returned %v", err)
		}
	case <-time.After(10 * time.Second):
		e.t.Error("daemon did not stop")
	}
}

func startEnv(t testing.TB, cfg Config) *testEnv {
	t.Helper()
	e := newEnv(t, cfg)
	if err := e.start(); err != nil {
		t.Fatalf("start: %v", err)
	}
	return e
}

// fakeClock is a settable clock: tests move time instead of sleeping.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}
