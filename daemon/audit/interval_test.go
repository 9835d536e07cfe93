package audit

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// manualTimer runs the background committer's clock and timer by hand:
// time moves only when the test moves it, and an armed timer runs only
// when the test takes it and calls its f.
type manualTimer struct {
	mu    sync.Mutex
	t     time.Time
	armed []*manualArm
}

// manualArm is one armed timer: d is the delay it was armed with.
type manualArm struct {
	m       *manualTimer
	d       time.Duration
	f       func()
	stopped bool
}

func newManualTimer() *manualTimer { return &manualTimer{t: t0} }

func (m *manualTimer) now() time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.t
}

func (m *manualTimer) advance(d time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.t = m.t.Add(d)
}

func (m *manualTimer) afterFunc(d time.Duration, f func()) stopper {
	m.mu.Lock()
	defer m.mu.Unlock()
	a := &manualArm{m: m, d: d, f: f}
	m.armed = append(m.armed, a)
	return a
}

func (a *manualArm) Stop() bool {
	a.m.mu.Lock()
	defer a.m.mu.Unlock()
	was := !a.stopped
	a.stopped = true
	a.m.armed = slices.DeleteFunc(a.m.armed, func(b *manualArm) bool { return b == a })
	return was
}

// pending returns how many timers are armed.
func (m *manualTimer) pending() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.armed)
}

// take returns the one armed timer, disarmed, and fails unless exactly one
// is armed.
func (m *manualTimer) take(t *testing.T) *manualArm {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.armed) != 1 {
		t.Fatalf("%d commit timers armed, want 1", len(m.armed))
	}
	a := m.armed[0]
	m.armed = nil
	return a
}

// fireHeld runs a's commit in the background with its fsync held, and
// returns once that fsync has begun; release ends the fsync with err and
// returns once the commit is over.
func fireHeld(spy *syncSpy, a *manualArm) (release func(err error)) {
	hold := newSyncHold()
	spy.hold.Store(hold)
	done := make(chan struct{})
	go func() {
		defer close(done)
		a.f()
	}()
	<-hold.started
	return func(err error) {
		spy.hold.Store(nil)
		hold.result <- err
		<-done
	}
}

// openInterval opens a log in interval mode whose committer runs on m.
func openInterval(t *testing.T, dir string, window time.Duration, spy *syncSpy, m *manualTimer, opts Options) *Log {
	t.Helper()
	opts.SyncWindow, opts.openFile, opts.now, opts.afterFunc = window, spy.open, m.now, m.afterFunc
	if opts.HeadEvery == 0 {
		opts.HeadEvery = -1 // the head follows every commit, so that it shows what was synced
	}
	return openLog(t, dir, opts)
}

// lastRecord returns the last complete record in the log file at path.
func lastRecord(t *testing.T, path string) Record {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.Split(bytes.TrimSuffix(b, []byte{'\n'}), []byte{'\n'})
	var r Record
	if err := json.Unmarshal(lines[len(lines)-1], &r); err != nil {
		t.Fatalf("last line of %s: %v", filepath.Base(path), err)
	}
	return r
}

func headSeq(t *testing.T, dir string) uint64 {
	t.Helper()
	h, err := readHead(dir)
	if err != nil {
		t.Fatal(err)
	}
	return h.seq
}

// In interval mode Append returns with its record in the file and no
// fsync run, even while a commit's fsync is running, and the fsync that
// covers a record begins at most one window after the record was written.
func TestIntervalAppendReturnsBeforeItsFsyncWithinTheWindow(t *testing.T) {
	const w = 20 * time.Millisecond
	dir := filepath.Join(t.TempDir(), "audit")
	spy, m := &syncSpy{}, newManualTimer()
	l := openInterval(t, dir, w, spy, m, Options{})
	active := filepath.Join(dir, fileName(1))
	appendOne := func() Record {
		t.Helper()
		r, err := l.Append(Record{Event: EventRequest})
		if err != nil {
			t.Fatal(err)
		}
		if got := lastRecord(t, active); got.Seq != r.Seq || got.Prev != r.Prev {
			t.Fatalf("Append returned seq %d but the file ends with seq %d: the record is not written", r.Seq, got.Seq)
		}
		return r
	}

	appendOne()
	if n := spy.syncs.Load(); n != 0 {
		t.Fatalf("Append in interval mode ran %d fsyncs, want none", n)
	}
	first := m.take(t)
	if first.d != w {
		t.Errorf("the first record armed the committer for %v, want the window, %v", first.d, w)
	}
	m.advance(5 * time.Millisecond)
	appendOne() // seq 2 joins the armed commit
	if n := m.pending(); n != 0 {
		t.Fatalf("a second append armed %d more timers, want none", n)
	}

	// The commit of seqs 1 and 2 begins at the deadline of seq 1; seq 3 is
	// written while its fsync runs, and Append does not wait for it.
	m.advance(w - 5*time.Millisecond)
	release := fireHeld(spy, first)
	m.advance(3 * time.Millisecond)
	appendOne()
	release(nil)
	if h := headSeq(t, dir); h != 2 {
		t.Errorf("head after the first commit = seq %d, want 2: only what the fsync covered", h)
	}
	// Seq 3 was written after that fsync began, so its commit is due one
	// window after it began: 3 ms have passed since.
	second := m.take(t)
	if want := w - 3*time.Millisecond; second.d != want {
		t.Errorf("the committer re-armed for %v, want %v (one window after the last fsync began)", second.d, want)
	}
	second.f()
	if h := headSeq(t, dir); h != 3 {
		t.Errorf("head after the second commit = seq %d, want 3", h)
	}
	if n := spy.syncs.Load(); n != 2 {
		t.Errorf("3 appends over two windows ran %d fsyncs, want 2", n)
	}

	// An fsync that overruns the window leaves what was written during it
	// due at once.
	appendOne()
	third := m.take(t)
	release = fireHeld(spy, third)
	m.advance(2 * w)
	appendOne()
	release(nil)
	if late := m.take(t); late.d != 0 {
		t.Errorf("after an fsync that overran the window the committer re-armed for %v, want 0", late.d)
	} else {
		late.f()
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if res := mustVerify(t, dir); res.Records != 5 || res.Unanchored != 0 {
		t.Errorf("Verify = %+v, want 5 records, all anchored", res)
	}
}

// Close commits and syncs what interval mode had not yet, and disarms the
// committer, which finds nothing to do if it fires all the same.
func TestIntervalCloseSyncsEverything(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "audit")
	spy, m := &syncSpy{}, newManualTimer()
	l := openInterval(t, dir, 50*time.Millisecond, spy, m, Options{})
	appendN(t, l, 3)
	armed := m.take(t)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, fileName(1)))
	if err != nil {
		t.Fatal(err)
	}
	if synced := spy.synced.Load(); synced != fi.Size() {
		t.Errorf("after Close %d of %d bytes are synced, want all", synced, fi.Size())
	}
	if !armed.stopped {
		t.Error("Close left the committer's timer armed")
	}
	armed.f() // a timer that fired as Close ran
	if res := mustVerify(t, dir); res.Records != 3 || res.Unanchored != 0 {
		t.Errorf("Verify = %+v, want 3 records, all anchored", res)
	}
}

// A lone append pays one fsync of its own only when fsync is "always".
func TestFsyncsPerLoneAppendByMode(t *testing.T) {
	tests := []struct {
		name string
		opts Options
		want int64
	}{
		{"always", Options{}, 10},
		{"interval, before its window ends", Options{SyncWindow: time.Second}, 0},
		{"never", Options{NoSync: true}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spy, m := &syncSpy{}, newManualTimer()
			tt.opts.openFile, tt.opts.now, tt.opts.afterFunc = spy.open, m.now, m.afterFunc
			l := openLog(t, filepath.Join(t.TempDir(), "audit"), tt.opts)
			defer l.Close()
			appendN(t, l, 10)
			if n := spy.syncs.Load(); n != tt.want {
				t.Errorf("10 lone appends ran %d fsyncs, want %d", n, tt.want)
			}
		})
	}
}

// A new trail has a head before its first commit, so a crash of the
// daemon in its first window leaves a trail that Open repairs.
func TestIntervalCrashBeforeTheFirstCommit(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "audit")
	spy, m := &syncSpy{}, newManualTimer()
	l := openInterval(t, dir, 20*time.Millisecond, spy, m, Options{})
	defer l.Close()
	appendN(t, l, 2)
	killed, _ := copyTrail(t, dir, spy, func(_, written int) int { return written })
	c, err := Open(killed, Options{NoSync: true})
	if err != nil {
		t.Fatalf("Open after a crash before the first commit = %v", err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if res := mustVerify(t, killed); res.Records != 3 {
		t.Errorf("Verify = %+v, want the 2 records and the repair's", res)
	}
}

// Under load in interval mode, a crash at any moment leaves a trail that
// Open accepts and Verify passes: a crash of the process (the file as
// written) with every record an Append returned, and a power loss (the
// file cut anywhere past its last fsync) with every record synced.
func TestIntervalCrashLeavesAVerifiableChain(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "audit")
	spy := &syncSpy{delay: 100 * time.Microsecond}
	l := openLog(t, dir, Options{SyncWindow: 2 * time.Millisecond, openFile: spy.open})
	var acked atomic.Uint64 // highest seq whose Append returned nil; all below it were written before
	burst := func(wg *sync.WaitGroup) {
		for range 16 {
			wg.Go(func() {
				for range 20 {
					r, err := l.Append(Record{Event: EventRequest})
					if err != nil {
						t.Errorf("Append = %v", err)
						return
					}
					for a := acked.Load(); a < r.Seq && !acked.CompareAndSwap(a, r.Seq); a = acked.Load() {
					}
				}
			})
		}
	}
	check := func(what string, crashed string, want int) {
		t.Helper()
		c, err := Open(crashed, Options{NoSync: true})
		if err != nil {
			t.Fatalf("Open after a %s = %v", what, err)
		}
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
		if res := mustVerify(t, crashed); res.Records < want {
			t.Errorf("Verify after a %s = %+v, want at least %d records", what, res, want)
		}
	}
	rng := rand.New(rand.NewPCG(16, 1))
	for range 20 {
		// Crash at a random point of a burst of appends, or just after it,
		// while its last records wait for their window.
		var wg sync.WaitGroup
		until := acked.Load() + uint64(rng.IntN(16*20+1))
		burst(&wg)
		for acked.Load() < until {
			time.Sleep(50 * time.Microsecond)
		}
		acks := int(acked.Load())
		killed, _ := copyTrail(t, dir, spy, func(_, written int) int { return written })
		check("SIGKILL", killed, acks)
		cut, durable := copyTrail(t, dir, spy, func(synced, written int) int { return synced + rng.IntN(written-synced+1) })
		check("power loss", cut, durable)
		wg.Wait()
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if res := mustVerify(t, dir); res.Records != 20*16*20 || res.Unanchored != 0 {
		t.Errorf("Verify after Close = %+v, want %d records, all anchored", res, 20*16*20)
	}
}

// Interval mode with its real timer: rotation stays a group boundary, the
// chain runs across files, and appends share far fewer fsyncs than one
// each.
func TestIntervalRotatesWithTheChainIntact(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "audit")
	spy := &syncSpy{}
	l := openLog(t, dir, Options{MaxFileBytes: 8 << 10, SyncWindow: 5 * time.Millisecond, openFile: spy.open})
	const workers, each = 16, 25
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() { appendN(t, l, each) })
	}
	wg.Wait()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if n := spy.syncs.Load(); n*4 > workers*each {
		t.Errorf("%d appends ran %d fsyncs, want fewer than a quarter as many", workers*each, n)
	}
	if res := mustVerify(t, dir); res.Records != workers*each || res.Files < 2 || res.Unanchored != 0 {
		t.Errorf("Verify = %+v, want %d records over several files, all anchored", res, workers*each)
	}
}

func TestOpenRefusesABadSyncWindow(t *testing.T) {
	for _, w := range []time.Duration{-time.Millisecond, MaxSyncWindow + 1} {
		if l, err := Open(filepath.Join(t.TempDir(), "audit"), Options{SyncWindow: w}); err == nil {
			l.Close()
			t.Errorf("Open with SyncWindow %v succeeded, want an error", w)
		}
	}
}
