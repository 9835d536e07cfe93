package audit

import (
	"errors"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// faults are the errors a faultyFile injects while set. Tests run as root in
// CI, where permission bits deny nothing, so faults come through this hook.
type faults struct {
	mu       sync.Mutex
	write    error // the log write writes half the line, then fails
	sync     error
	head     error // the head write scribbles, then fails
	truncate error
	create   error // opening a log file that does not exist yet fails
}

func (fs *faults) get(p *error) error {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return *p
}

func (fs *faults) clear() {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.write, fs.sync, fs.head, fs.truncate, fs.create = nil, nil, nil, nil, nil
}

type faultyFile struct {
	*os.File
	fs *faults
}

func (f *faultyFile) Write(b []byte) (int, error) {
	if err := f.fs.get(&f.fs.write); err != nil {
		n, _ := f.File.Write(b[:len(b)/2])
		return n, err
	}
	return f.File.Write(b)
}

func (f *faultyFile) WriteAt(b []byte, off int64) (int, error) {
	if err := f.fs.get(&f.fs.head); err != nil {
		n, _ := f.File.WriteAt([]byte("scribble"), off)
		return n, err
	}
	return f.File.WriteAt(b, off)
}

func (f *faultyFile) Sync() error {
	if err := f.fs.get(&f.fs.sync); err != nil {
		return err
	}
	return f.File.Sync()
}

func (f *faultyFile) Truncate(size int64) error {
	if err := f.fs.get(&f.fs.truncate); err != nil {
		return err
	}
	return f.File.Truncate(size)
}

func (fs *faults) open(name string, flag int, perm os.FileMode) (file, error) {
	if _, err := os.Stat(name); err != nil && fs.get(&fs.create) != nil {
		return nil, fs.get(&fs.create)
	}
	f, err := os.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &faultyFile{File: f, fs: fs}, nil
}

func TestAppendFailsClosedAndRecovers(t *testing.T) {
	tests := []struct {
		name     string
		maxBytes int64
		inject   func(fs *faults)
		sizeKept bool // the active file is back to its size before the fault
	}{
		{"disk full mid-line", 0, func(fs *faults) { fs.write = syscall.ENOSPC }, true},
		{"fsync fails", 0, func(fs *faults) { fs.sync = syscall.EIO }, true},
		{"head write fails", 0, func(fs *faults) { fs.head = syscall.EIO }, true},
		{"disk full and the cut-back fails", 0, func(fs *faults) {
			fs.write, fs.truncate = syscall.ENOSPC, syscall.EIO
		}, false},
		{"rotation cannot create a file", 1, func(fs *faults) { fs.create = syscall.ENOSPC }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "audit")
			fs := &faults{}
			// The head is written on every commit, so each append meets the fault.
			l := openLog(t, dir, Options{MaxFileBytes: tt.maxBytes, openFile: fs.open, HeadEvery: -1})
			appendN(t, l, 3)
			active := filepath.Join(dir, fileName(l.num))
			before, _ := os.Stat(active)
			tt.inject(fs)
			for range 2 {
				if r, err := l.Append(Record{Event: EventKill}); err == nil {
					t.Fatalf("Append during fault = seq %d, nil; want error", r.Seq)
				}
			}
			if after, _ := os.Stat(active); tt.sizeKept && after.Size() != before.Size() {
				t.Errorf("%s is %d bytes after failed appends, want %d", fileName(l.num), after.Size(), before.Size())
			}
			fs.clear()
			r, err := l.Append(Record{Event: EventKill})
			if err != nil || r.Seq != 4 {
				t.Fatalf("Append after fault cleared = seq %d, %v; want seq 4, nil", r.Seq, err)
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			if res := mustVerify(t, dir); res.Records != 4 || res.Unanchored != 0 {
				t.Errorf("Verify = %+v, want 4 records, all anchored", res)
			}
		})
	}
}

// With head writes paced, a head that cannot be written still fails
// appends closed: the late write marks the log for repair, and appends
// fail until the head can be written again.
func TestPacedHeadWriteFailureFailsClosed(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "audit")
	fs := &faults{}
	l := openLog(t, dir, Options{openFile: fs.open, HeadEvery: 20 * time.Millisecond})
	appendN(t, l, 3) // the first commit writes the head; the rest are paced
	fs.mu.Lock()
	fs.head = syscall.EIO
	fs.mu.Unlock()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := l.Append(Record{Event: EventKill}); err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("appends still succeed long after the head became unwritable")
		}
		time.Sleep(5 * time.Millisecond)
	}
	fs.clear()
	if _, err := l.Append(Record{Event: EventKill}); err != nil {
		t.Fatalf("Append after the fault cleared: %v", err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if res := mustVerify(t, dir); res.Unanchored != 0 {
		t.Errorf("Verify = %+v, want every record anchored after Close", res)
	}
}

// countingHead counts the writes to audit.head.
type countingHead struct {
	*os.File
	n *atomic.Int64
}

func (c countingHead) WriteAt(p []byte, off int64) (int, error) {
	c.n.Add(1)
	return c.File.WriteAt(p, off)
}

// A burst of appends rewrites the head a few times, not once per record,
// and a head left lagging catches up within HeadEvery with no further
// append.
func TestHeadWritesArePaced(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "audit")
	var writes atomic.Int64
	open := func(name string, flag int, perm os.FileMode) (file, error) {
		f, err := os.OpenFile(name, flag, perm)
		if err != nil || filepath.Base(name) != headName {
			return f, err
		}
		return countingHead{File: f, n: &writes}, nil
	}
	l := openLog(t, dir, Options{NoSync: true, openFile: open, HeadEvery: 50 * time.Millisecond})
	defer l.Close()
	const n = 500
	start := time.Now()
	appendN(t, l, n)
	burst := time.Since(start)
	if max := int64(burst/(50*time.Millisecond)) + 2; writes.Load() > max {
		t.Errorf("%d appends in %v wrote the head %d times, want at most %d", n, burst, writes.Load(), max)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		h, err := readHead(dir)
		if err == nil && h.seq == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("head = %+v, %v; want it to catch up to seq %d", h, err, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if res := mustVerify(t, dir); res.Records != n || res.Unanchored != 0 {
		t.Errorf("live Verify after the head caught up = %+v, want %d records, none unanchored", res, n)
	}
}

func TestAppendToDevFull(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skip("no /dev/full")
	}
	dir := filepath.Join(t.TempDir(), "audit")
	full := func(name string, flag int, perm os.FileMode) (file, error) {
		if filepath.Base(name) == headName {
			return os.OpenFile(name, flag, perm)
		}
		return os.OpenFile("/dev/full", os.O_WRONLY, 0)
	}
	l := openLog(t, dir, Options{openFile: full})
	defer l.Close()
	_, err := l.Append(Record{Event: EventDaemonStart})
	if !errors.Is(err, syscall.ENOSPC) {
		t.Errorf("Append to /dev/full = %v, want ENOSPC", err)
	}
	if h, err := readHead(dir); err != nil || h.seq != 0 || h.hash != genesis {
		t.Errorf("head after a failed first append = %+v, %v; want the genesis head (seq 0)", h, err)
	}
}
