package audit

import (
	"errors"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
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
			l := openLog(t, dir, Options{MaxFileBytes: tt.maxBytes, openFile: fs.open})
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
	if _, err := readHead(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("head after a failed first append = %v, want none", err)
	}
}
