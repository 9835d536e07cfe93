package audit

import (
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// A failed fsync in interval mode cuts nothing (the records were
// acknowledged), reports every record it left undurable, keeps the head at
// what was synced, and fails every later Append, even once the fault is
// gone: a retried fsync after a failed one proves nothing.
func TestIntervalFailedFsyncFailsClosed(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "audit")
	spy, m := &syncSpy{}, newManualTimer()
	var mu sync.Mutex
	var reported []uint64
	l := openInterval(t, dir, 20*time.Millisecond, spy, m, Options{OnAsyncFail: func(r Record, err error) {
		mu.Lock()
		defer mu.Unlock()
		if !errors.Is(err, ErrSyncFailed) || !errors.Is(err, syscall.EIO) {
			t.Errorf("OnAsyncFail(seq %d) = %v, want ErrSyncFailed wrapping EIO", r.Seq, err)
		}
		reported = append(reported, r.Seq)
	}})
	appendN(t, l, 3)
	m.take(t).f() // seqs 1 to 3 are synced
	appendN(t, l, 2)
	release := fireHeld(spy, m.take(t))
	appendN(t, l, 1) // seq 6 is written while the failing fsync runs
	release(syscall.EIO)

	if want := []uint64{4, 5, 6}; !slices.Equal(reported, want) {
		t.Errorf("OnAsyncFail reported seqs %v, want %v", reported, want)
	}
	if h := headSeq(t, dir); h != 3 {
		t.Errorf("head after the failed fsync = seq %d, want 3, the last record synced", h)
	}
	for range 2 { // the second after the fault is gone
		_, err := l.Append(Record{Event: EventRequest})
		if !errors.Is(err, ErrSyncFailed) || !errors.Is(err, syscall.EIO) || !strings.Contains(err.Error(), "refused until the trail is reopened") {
			t.Fatalf("Append after a failed fsync = %v, want ErrSyncFailed wrapping EIO and saying what to do", err)
		}
	}
	if n := m.pending(); n != 0 {
		t.Errorf("%d commit timers armed after the failure, want none", n)
	}
	if err := l.Close(); !errors.Is(err, ErrSyncFailed) {
		t.Errorf("Close after a failed fsync = %v, want ErrSyncFailed", err)
	}
	if res := mustVerify(t, dir); res.Records != 6 || res.Unanchored != 3 {
		t.Errorf("Verify after the failure = %+v, want all 6 records kept and 3 unanchored", res)
	}

	// Reopened (the daemon restarted), the trail records the repair and
	// continues the chain.
	l = openLog(t, dir, Options{SyncWindow: 20 * time.Millisecond})
	if r, err := l.Append(Record{Event: EventDaemonStart}); err != nil || r.Seq != 8 {
		t.Fatalf("Append after reopening = seq %d, %v; want seq 8 (7 records the repair)", r.Seq, err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if res := mustVerify(t, dir); res.Records != 8 || res.Unanchored != 0 {
		t.Errorf("Verify after reopening = %+v, want 8 records, all anchored", res)
	}
}

// A failed write in interval mode fails its own Append and cuts its torn
// line, as in the other modes; the records before it are not touched and
// the next Append, once the disk has room, continues the chain.
func TestIntervalFailedWriteFailsItsAppend(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "audit")
	fs := &faults{}
	m := newManualTimer()
	l := openLog(t, dir, Options{SyncWindow: 20 * time.Millisecond, openFile: fs.open, now: m.now, afterFunc: m.afterFunc})
	appendN(t, l, 3)
	fs.mu.Lock()
	fs.write = syscall.ENOSPC
	fs.mu.Unlock()
	if _, err := l.Append(Record{Event: EventRequest}); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Append on a full disk = %v, want ENOSPC", err)
	}
	fs.clear()
	if r, err := l.Append(Record{Event: EventRequest}); err != nil || r.Seq != 4 {
		t.Fatalf("Append once the disk has room = seq %d, %v; want seq 4", r.Seq, err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if res := mustVerify(t, dir); res.Records != 4 || res.Unanchored != 0 {
		t.Errorf("Verify = %+v, want 4 records, all anchored", res)
	}
}

// A head that cannot be written in interval mode, whose fsync succeeded,
// loses nothing and is not final: the synced records stay acknowledged,
// appends fail until the head can be written, and then continue.
func TestIntervalFailedHeadWriteFailsAppendsUntilItHeals(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "audit")
	fs := &faults{}
	m := newManualTimer()
	failed := 0
	l := openLog(t, dir, Options{SyncWindow: 20 * time.Millisecond, HeadEvery: -1, openFile: fs.open, now: m.now, afterFunc: m.afterFunc,
		OnAsyncFail: func(Record, error) { failed++ }})
	appendN(t, l, 3)
	fs.mu.Lock()
	fs.head = syscall.EIO
	fs.mu.Unlock()
	m.take(t).f() // synced, but the head write fails
	if failed != 0 {
		t.Errorf("OnAsyncFail told of %d records, want none: they were synced", failed)
	}
	if _, err := l.Append(Record{Event: EventRequest}); !errors.Is(err, syscall.EIO) {
		t.Fatalf("Append while the head cannot be written = %v, want EIO", err)
	}
	fs.clear()
	if r, err := l.Append(Record{Event: EventRequest}); err != nil || r.Seq != 4 {
		t.Fatalf("Append once the head can be written = seq %d, %v; want seq 4", r.Seq, err)
	}
	if h := headSeq(t, dir); h != 3 {
		t.Errorf("head = seq %d, want 3, the last record synced", h)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if res := mustVerify(t, dir); res.Records != 4 || res.Unanchored != 0 {
		t.Errorf("Verify = %+v, want 4 records, all anchored", res)
	}
}

// The fsync after cutting a torn line covers the records still waiting
// for their window too, so its failure fails the Log closed like a
// commit's.
func TestIntervalFailedSyncAfterACutFailsClosed(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "audit")
	fs := &faults{}
	m := newManualTimer()
	var reported []uint64
	l := openLog(t, dir, Options{SyncWindow: 20 * time.Millisecond, openFile: fs.open, now: m.now, afterFunc: m.afterFunc,
		OnAsyncFail: func(r Record, _ error) { reported = append(reported, r.Seq) }})
	appendN(t, l, 3) // written, waiting for their window
	fs.mu.Lock()
	fs.write, fs.sync = syscall.ENOSPC, syscall.EIO
	fs.mu.Unlock()
	if _, err := l.Append(Record{Event: EventRequest}); !errors.Is(err, syscall.ENOSPC) || !errors.Is(err, syscall.EIO) {
		t.Fatalf("Append on a full, failing disk = %v, want ENOSPC and EIO", err)
	}
	fs.clear()
	if _, err := l.Append(Record{Event: EventRequest}); !errors.Is(err, ErrSyncFailed) {
		t.Fatalf("Append after the failed sync = %v, want ErrSyncFailed", err)
	}
	if want := []uint64{1, 2, 3}; !slices.Equal(reported, want) {
		t.Errorf("OnAsyncFail reported seqs %v, want %v", reported, want)
	}
	if err := l.Close(); !errors.Is(err, ErrSyncFailed) {
		t.Errorf("Close = %v, want ErrSyncFailed", err)
	}
	if res := mustVerify(t, dir); res.Records != 3 {
		t.Errorf("Verify = %+v, want the 3 records kept", res)
	}
}
