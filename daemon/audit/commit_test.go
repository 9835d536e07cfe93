package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// syncSpy wraps the log files a Log opens (not the head) to count their
// fsyncs, track how much of the active file is known to be durable, and
// let a test hold an fsync and choose how it ends.
type syncSpy struct {
	syncs  atomic.Int64 // fsyncs of log files, failed ones included
	synced atomic.Int64 // size of the log file when its latest successful fsync began
	delay  time.Duration
	hold   atomic.Pointer[syncHold]
}

// syncHold stops every fsync that starts while it is set: the fsync sends
// on started, then waits for result and fails with it if it is not nil.
type syncHold struct {
	started chan struct{}
	result  chan error
}

func newSyncHold() *syncHold {
	return &syncHold{started: make(chan struct{}), result: make(chan error)}
}

type spyFile struct {
	*os.File
	spy *syncSpy
}

func (s *syncSpy) open(name string, flag int, perm os.FileMode) (file, error) {
	f, err := os.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	if filepath.Base(name) == headName {
		return f, nil
	}
	return &spyFile{File: f, spy: s}, nil
}

// Sync counts the fsync, and on success records the file's size from
// before it began: every byte written by then is durable.
func (f *spyFile) Sync() error {
	f.spy.syncs.Add(1)
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if h := f.spy.hold.Load(); h != nil {
		h.started <- struct{}{}
		if err := <-h.result; err != nil {
			return err
		}
	}
	time.Sleep(f.spy.delay)
	if err := f.File.Sync(); err != nil {
		return err
	}
	f.spy.synced.Store(fi.Size())
	return nil
}

// waitPending waits until n records are written and awaiting a commit.
func waitPending(t *testing.T, l *Log, n int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		l.mu.Lock()
		got := len(l.pending)
		l.mu.Unlock()
		if got == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d records pending, want %d", got, n)
		}
	}
}

func TestConcurrentAppendsShareFsyncs(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "audit")
	// The delay stands in for a slow disk, so that appends pile up behind
	// each fsync however fast the test machine's disk is.
	spy := &syncSpy{delay: 200 * time.Microsecond}
	l := openLog(t, dir, Options{MaxFileBytes: 8 << 10, openFile: spy.open})
	got := make(chan []uint64)
	sub := l.Subscribe(context.Background())
	go func() {
		var seqs []uint64
		for r := range sub {
			seqs = append(seqs, r.Seq)
		}
		got <- seqs
	}()
	const workers, each = 32, 25
	var wg sync.WaitGroup
	seen := make([]atomic.Bool, workers*each+1)
	for range workers {
		wg.Go(func() {
			for range each {
				r, err := l.Append(Record{Event: EventRequest})
				if err != nil {
					t.Errorf("Append = %v", err)
					return
				}
				if r.Seq > workers*each || seen[r.Seq].Swap(true) {
					t.Errorf("Append returned seq %d twice or out of range", r.Seq)
				}
			}
		})
	}
	wg.Wait()
	syncs := spy.syncs.Load()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d appends, %d fsyncs", workers*each, syncs)
	if syncs*2 > workers*each {
		t.Errorf("%d concurrent appends took %d fsyncs, want fewer than half as many", workers*each, syncs)
	}
	seqs := <-got
	for i, s := range seqs {
		if s != uint64(i+1) {
			t.Fatalf("subscriber got seq %d as record %d, want every seq in order", s, i+1)
		}
	}
	if len(seqs) != workers*each {
		t.Errorf("subscriber got %d records, want %d", len(seqs), workers*each)
	}
	if res := mustVerify(t, dir); res.Records != workers*each || res.Files < 2 || res.Unanchored != 0 {
		t.Errorf("Verify = %+v, want %d records over several files, all anchored", res, workers*each)
	}
}

func TestFailedCommitFailsItsGroupAndLaterAppends(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "audit")
	spy := &syncSpy{}
	l := openLog(t, dir, Options{openFile: spy.open})
	appendN(t, l, 3)
	sub := l.Subscribe(context.Background())
	type result struct {
		r   Record
		err error
	}
	results := make(chan result)
	appendAsync := func(n int) {
		for range n {
			go func() {
				r, err := l.Append(Record{Event: EventKill})
				results <- result{r, err}
			}()
		}
	}
	hold := newSyncHold()
	spy.hold.Store(hold)
	appendAsync(1) // seq 4 leads a commit of itself
	<-hold.started
	appendAsync(2) // seqs 5 and 6 are written during its fsync
	waitPending(t, l, 3)
	hold.result <- nil
	if res := <-results; res.err != nil || res.r.Seq != 4 {
		t.Fatalf("Append = seq %d, %v; want seq 4, nil", res.r.Seq, res.err)
	}
	<-hold.started // 5 or 6 leads a commit of both
	appendAsync(2) // seqs 7 and 8 are written during its fsync
	waitPending(t, l, 4)
	spy.hold.Store(nil)
	hold.result <- syscall.EIO
	failed := make(map[uint64]bool)
	for range 4 {
		res := <-results
		if !errors.Is(res.err, syscall.EIO) {
			t.Errorf("Append seq %d = %v, want an error wrapping EIO", res.r.Seq, res.err)
		}
		failed[res.r.Seq] = true
	}
	for s := uint64(5); s <= 8; s++ {
		if !failed[s] {
			t.Errorf("seq %d did not fail, want 5 to 8 failed", s)
		}
	}
	if res := mustVerify(t, dir); res.Records != 4 || res.Unanchored != 0 || res.Pending != 0 {
		t.Errorf("Verify after the failed commit = %+v, want 4 records, all anchored, nothing pending", res)
	}
	for want := uint64(5); want <= 6; want++ {
		if r, err := l.Append(Record{Event: EventKill}); err != nil || r.Seq != want {
			t.Fatalf("Append after the failure = seq %d, %v; want seq %d, nil", r.Seq, err, want)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if res := mustVerify(t, dir); res.Records != 6 || res.Unanchored != 0 {
		t.Errorf("Verify = %+v, want 6 records, all anchored", res)
	}
	var seen []uint64
	for r := range sub {
		seen = append(seen, r.Seq)
	}
	if want := []uint64{4, 5, 6}; !slices.Equal(seen, want) {
		t.Errorf("subscriber saw seqs %v, want %v: only acknowledged records", seen, want)
	}
}

func TestCrashLeavesHeadWithinDurableLog(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "audit")
	spy := &syncSpy{delay: 100 * time.Microsecond}
	l := openLog(t, dir, Options{openFile: spy.open})
	var acked atomic.Uint64 // highest seq whose Append returned nil
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
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
	for range 5 {
		time.Sleep(10 * time.Millisecond)
		acks := acked.Load()
		crashed := crashCopy(t, dir, spy)
		c := openLog(t, crashed, Options{NoSync: true})
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
		if res := mustVerify(t, crashed); res.Records < int(acks) {
			t.Errorf("Verify after a crash = %+v, want at least the %d acknowledged records", res, acks)
		}
	}
	close(stop)
	wg.Wait()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}

// crashCopy copies the trail in dir as a power loss at this instant could
// leave it: the log cut to the end of its last successful fsync, and the
// head as last written.
func crashCopy(t *testing.T, dir string, spy *syncSpy) string {
	t.Helper()
	crashed, _ := copyTrail(t, dir, spy, func(synced, _ int) int { return synced })
	return crashed
}

// copyTrail copies the trail in dir (its first file and its head) as a
// crash at this instant could leave it, and returns the copy and how many
// records were durable. The head is copied as last written; cut says how
// much of the log survives, given how much was durable (the file's size
// when its latest successful fsync began) and how much was written: a
// power loss keeps at least the durable part and perhaps some of the
// rest, which the kernel may have written back by itself, and a crash of
// the process alone keeps all of it. The head is read first, so any head
// it sees was written after the fsync covering it had already updated
// spy.synced.
func copyTrail(t *testing.T, dir string, spy *syncSpy, cut func(synced, written int) int) (string, int) {
	t.Helper()
	h, err := readHead(dir)
	var be *BreakError
	for i := 0; i < 100 && errors.As(err, &be); i++ { // a read can race the in-place head update
		time.Sleep(time.Millisecond)
		h, err = readHead(dir)
	}
	headBytes := h.encode()
	switch {
	case errors.Is(err, os.ErrNotExist):
		headBytes = nil // copied as it is: none
	case err != nil:
		t.Fatal(err)
	}
	synced := int(spy.synced.Load())
	log, err := os.ReadFile(filepath.Join(dir, fileName(1)))
	if err != nil {
		t.Fatal(err)
	}
	crashed := filepath.Join(t.TempDir(), "audit")
	if err := os.Mkdir(crashed, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := errors.Join(
		os.WriteFile(filepath.Join(crashed, fileName(1)), log[:cut(synced, len(log))], 0o600),
		os.WriteFile(filepath.Join(crashed, headName), headBytes, 0o600),
	); err != nil {
		t.Fatal(err)
	}
	return crashed, bytes.Count(log[:synced], []byte{'\n'})
}

// benchRecord is a typical request record, about 450 bytes as a line.
func benchRecord() Record {
	uid := 1000
	return Record{Event: EventRequest, Session: "7f3c2a9e0d1b4c5a8e6f7a8b9c0d1e2f", Agent: "coder",
		JTI: "01JD3Q9W6", PeerUID: &uid, PeerPID: 4242, PeerExe: "/usr/bin/python3",
		Provider: "openai", Model: "gpt-4o", Method: "POST", Path: "/v1/chat/completions",
		Status: 200, LatencyMS: 812.4, BytesIn: 2048, BytesOut: 16384,
		Usage: &Usage{InputTokens: 512, OutputTokens: 2048}}
}

// benchLog opens a fresh log for a benchmark and sets the bytes per op to
// the length of one record line.
func benchLog(b *testing.B, opts Options) *Log {
	l := openLog(b, filepath.Join(b.TempDir(), "audit"), opts)
	b.Cleanup(func() { l.Close() })
	r, err := l.Append(benchRecord())
	if err != nil {
		b.Fatal(err)
	}
	line, _ := json.Marshal(r)
	b.SetBytes(int64(len(line) + 1))
	b.ReportAllocs()
	return l
}

// benchModes are the daemon's three audit_fsync modes.
var benchModes = []struct {
	name string
	opts Options
}{
	{"always", Options{}},
	{"interval", Options{SyncWindow: DefaultSyncWindow}},
	{"never", Options{NoSync: true}},
}

// BenchmarkAppend measures Append in each mode with one appender and with
// 16, as in the daemon, where each request goroutine appends its own
// records. With one appender and fsync always, every append pays its own
// fsync; with 16, appends queue behind an fsync and share the next.
func BenchmarkAppend(b *testing.B) {
	for _, bc := range benchModes {
		for _, appenders := range []int{1, 16} {
			b.Run(fmt.Sprintf("%s/appenders=%d", bc.name, appenders), func(b *testing.B) {
				l := benchLog(b, bc.opts)
				rec := benchRecord()
				var next atomic.Int64
				var wg sync.WaitGroup
				b.ResetTimer()
				for range appenders {
					wg.Go(func() {
						for next.Add(1) <= int64(b.N) {
							if _, err := l.Append(rec); err != nil {
								b.Error(err)
								return
							}
						}
					})
				}
				wg.Wait()
			})
		}
	}
}

// AppendAsync returns once its line is written, while the fsync that
// commits it is still running, and the record is then made durable with no
// further append.
func TestAppendAsyncReturnsBeforeTheFsync(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "audit")
	spy := &syncSpy{}
	l := openLog(t, dir, Options{openFile: spy.open})
	appendN(t, l, 1)
	hold := newSyncHold()
	spy.hold.Store(hold)
	r, err := l.AppendAsync(Record{Event: EventResponse})
	if err != nil || r.Seq != 2 {
		t.Fatalf("AppendAsync = seq %d, %v", r.Seq, err)
	}
	select { // the background commit's fsync has begun and is held: we returned before it
	case <-hold.started:
	case <-time.After(10 * time.Second):
		t.Fatal("no commit started for the async record")
	}
	spy.hold.Store(nil)
	hold.result <- nil
	fi, err := os.Stat(filepath.Join(dir, fileName(1)))
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for spy.synced.Load() < fi.Size() {
		if time.Now().After(deadline) {
			t.Fatalf("async record never synced: %d of %d bytes durable", spy.synced.Load(), fi.Size())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if res := mustVerify(t, dir); res.Records != 2 || res.Unanchored != 0 {
		t.Errorf("Verify = %+v, want 2 records, all anchored", res)
	}
}

// A failed commit cuts an async record like any other, tells OnAsyncFail,
// and the next Append continues a valid chain once the fault is gone.
func TestAppendAsyncFailureIsReportedAndCut(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "audit")
	spy := &syncSpy{}
	failed := make(chan Record, 1)
	l := openLog(t, dir, Options{openFile: spy.open, OnAsyncFail: func(r Record, err error) {
		if errors.Is(err, syscall.EIO) {
			failed <- r
		}
	}})
	appendN(t, l, 2)
	hold := newSyncHold()
	spy.hold.Store(hold)
	if _, err := l.AppendAsync(Record{Event: EventResponse}); err != nil {
		t.Fatal(err)
	}
	<-hold.started
	spy.hold.Store(nil)
	hold.result <- syscall.EIO
	select {
	case r := <-failed:
		if r.Seq != 3 || r.Event != EventResponse {
			t.Errorf("OnAsyncFail got %+v, want seq 3", r)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("OnAsyncFail not called for the failed commit")
	}
	r, err := l.Append(Record{Event: EventKill})
	if err != nil || r.Seq != 3 {
		t.Fatalf("Append after the failed async commit = seq %d, %v; want seq 3 (the cut record's)", r.Seq, err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if res := mustVerify(t, dir); res.Records != 3 {
		t.Errorf("Verify = %+v, want 3 records", res)
	}
}
