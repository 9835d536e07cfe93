package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"
)

// subBuffer is how many records a Subscribe channel holds; a subscriber
// that falls further behind is dropped rather than allowed to stall Append.
const subBuffer = 256

// Options tunes a Log. The zero value is ready to use.
type Options struct {
	// MaxFileBytes is the size past which the active file is rotated;
	// DefaultMaxFileBytes if zero or negative.
	MaxFileBytes int64
	// Clock stamps records whose Time is zero; time.Now if nil.
	Clock func() time.Time
	// NoSync skips the fsync after each append. Append is then no longer
	// durable across an OS crash or power loss (the file and head may lose
	// their newest records and Open may refuse the result), so it is meant
	// for tests and benchmarks. The field is negative so that the zero value
	// is the safe one.
	NoSync bool

	// openFile opens the log and head files; a test hook for fault
	// injection. os.OpenFile if nil.
	openFile func(name string, flag int, perm os.FileMode) (file, error)
}

// file is the part of *os.File a Log writes through.
type file interface {
	io.Writer
	io.WriterAt
	Truncate(size int64) error
	Sync() error
	Close() error
}

func osOpenFile(name string, flag int, perm os.FileMode) (file, error) {
	return os.OpenFile(name, flag, perm)
}

// Log appends records to the trail in one directory. Only one Log (one
// process) may write a directory at a time; the daemon's single-instance
// guard ensures that. A Log is safe for concurrent use.
type Log struct {
	dir  string
	opts Options

	mu     sync.Mutex
	f      file  // active file, opened O_APPEND
	num    int   // number of the active file
	size   int64 // bytes of complete records in the active file
	hf     file  // audit.head
	seq    uint64
	prev   string // hash of the last record's line
	dirty  bool   // a failed append may have left bytes past size
	closed bool
	buf    bytes.Buffer // the line being written
	hbuf   []byte       // the head being written
	enc    *json.Encoder
	subs   map[chan Record]struct{}
}

// Open opens the trail in dir, creating dir (0700) if missing, and resumes
// the chain from its newest record. A torn final line left by a crash is cut
// and a head left behind by a crash is brought forward; either repair is
// then recorded as an "audit_recovered" record. Any other damage (a complete
// line that does not parse, a broken chain in the active file, a head that
// names a record that is not there) is refused with a *BreakError: the
// operator must inspect the trail, as continuing would hide the break.
func Open(dir string, opts Options) (*Log, error) {
	if opts.MaxFileBytes <= 0 {
		opts.MaxFileBytes = DefaultMaxFileBytes
	}
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	if opts.openFile == nil {
		opts.openFile = osOpenFile
	}
	if err := ensureDir(dir); err != nil {
		return nil, err
	}
	nums, err := listFiles(dir)
	if err != nil {
		return nil, fmt.Errorf("open audit log: %w", err)
	}
	rec, err := recoverState(dir, nums)
	if err != nil {
		return nil, fmt.Errorf("open audit log %s: %w", dir, err)
	}
	l := &Log{dir: dir, opts: opts, num: rec.active, size: rec.size, seq: rec.seq, prev: rec.hash,
		subs: make(map[chan Record]struct{})}
	l.enc = json.NewEncoder(&l.buf)
	if err := l.openFiles(rec, len(nums) == 0); err != nil {
		return nil, fmt.Errorf("open audit log %s: %w", dir, err)
	}
	if rec.torn > 0 || rec.headLag > 0 {
		if _, err := l.Append(recoveredRecord(rec)); err != nil {
			l.Close()
			return nil, fmt.Errorf("open audit log %s: record recovery: %w", dir, err)
		}
	}
	return l, nil
}

// ensureDir creates dir 0700 if missing and refuses a symlink, a non-
// directory, or a directory that group or others can enter.
func ensureDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create audit dir: %w", err)
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("stat audit dir: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("audit dir %s is not a directory (a symlink?)", dir)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return fmt.Errorf("audit dir %s has mode %04o, want 0700", dir, fi.Mode().Perm())
	}
	return nil
}

// openFiles opens the active file and the head, cutting a torn line first.
func (l *Log) openFiles(rec recovery, created bool) error {
	f, err := l.opts.openFile(filepath.Join(l.dir, fileName(l.num)), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("open active file: %w", err)
	}
	if rec.torn > 0 {
		if err := errors.Join(f.Truncate(rec.size), f.Sync()); err != nil {
			f.Close()
			return fmt.Errorf("cut torn line: %w", err)
		}
	}
	hf, err := l.opts.openFile(filepath.Join(l.dir, headName), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		f.Close()
		return fmt.Errorf("open head: %w", err)
	}
	l.f, l.hf = f, hf
	if created && !l.opts.NoSync {
		return syncDir(l.dir)
	}
	return nil
}

// recoveredRecord describes what Open repaired.
func recoveredRecord(rec recovery) Record {
	r := Record{Event: EventRecovered, Detail: map[string]string{"file": fileName(rec.active)}}
	if rec.torn > 0 {
		r.Reason = "torn final line cut after a crash"
		r.Detail["torn_bytes"] = strconv.FormatInt(rec.torn, 10)
	}
	if rec.headLag > 0 {
		if r.Reason != "" {
			r.Reason += "; "
		}
		r.Reason += "head anchor lagged the log after a crash"
		r.Detail["head_lag"] = strconv.FormatUint(rec.headLag, 10)
	}
	return r
}

// Append assigns r its Seq, Prev and (if zero) Time, writes it as one line
// with a single write call, and returns it as written. On any failure it
// returns an error, cuts the file back to the last complete record and does
// not consume the sequence number, so a later Append continues the chain.
func (l *Log) Append(r Record) (Record, error) {
	if r.Event == "" {
		return r, errors.New("append audit record: empty event")
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return r, ErrClosed
	}
	if err := l.repair(); err != nil {
		return r, fmt.Errorf("append audit record: %w", err)
	}
	r.Seq, r.Prev = l.seq+1, l.prev
	if r.Time.IsZero() {
		r.Time = l.opts.Clock().UTC()
	}
	l.buf.Reset()
	if err := l.enc.Encode(&r); err != nil {
		return r, fmt.Errorf("append audit record seq %d: %w", r.Seq, err)
	}
	line := l.buf.Bytes() // ends in '\n'
	if len(line) > maxLine {
		return r, fmt.Errorf("append audit record seq %d: %w", r.Seq, ErrTooLarge)
	}
	if l.size > 0 && l.size+int64(len(line)) > l.opts.MaxFileBytes {
		if err := l.rotate(); err != nil {
			return r, fmt.Errorf("append audit record seq %d: rotate: %w", r.Seq, err)
		}
	}
	hash := lineHash(line[:len(line)-1])
	if err := l.write(line, head{seq: r.Seq, hash: hash}); err != nil {
		l.dirty = true
		if rerr := l.repair(); rerr != nil {
			err = errors.Join(err, rerr)
		}
		return r, fmt.Errorf("append audit record seq %d: %w", r.Seq, err)
	}
	l.size += int64(len(line))
	l.seq, l.prev = r.Seq, hash
	l.notify(r)
	return r, nil
}

// write appends line, syncs it unless NoSync, then points the head at it.
func (l *Log) write(line []byte, h head) error {
	n, err := l.f.Write(line)
	if err == nil && n != len(line) {
		err = io.ErrShortWrite
	}
	if err != nil {
		return fmt.Errorf("write: %w", err)
	}
	if !l.opts.NoSync {
		if err := l.f.Sync(); err != nil {
			return fmt.Errorf("sync: %w", err)
		}
	}
	return l.writeHead(h)
}

// writeHead overwrites audit.head in place. It is not synced per append: a
// head lost in a crash only lags the log, which Open repairs (see tail.go).
func (l *Log) writeHead(h head) error {
	l.hbuf = h.appendTo(l.hbuf[:0])
	if _, err := l.hf.WriteAt(l.hbuf, 0); err != nil {
		return fmt.Errorf("write head: %w", err)
	}
	return nil
}

// repair undoes what a failed append may have left: bytes past the last
// complete record, and a head naming the failed record.
func (l *Log) repair() error {
	if !l.dirty {
		return nil
	}
	if err := l.f.Truncate(l.size); err != nil {
		return fmt.Errorf("cut back to offset %d: %w", l.size, err)
	}
	if err := l.writeHead(head{seq: l.seq, hash: l.prev}); err != nil {
		return err
	}
	if !l.opts.NoSync {
		if err := errors.Join(l.f.Sync(), l.hf.Sync()); err != nil {
			return fmt.Errorf("sync after cut: %w", err)
		}
	}
	l.dirty = false
	return nil
}

// rotate makes the next numbered file active. The head is synced first so
// that after a crash it never lags into an earlier file than the active one,
// which is all Open scans.
func (l *Log) rotate() error {
	if !l.opts.NoSync {
		if err := l.hf.Sync(); err != nil {
			return fmt.Errorf("sync head: %w", err)
		}
	}
	next := l.num + 1
	f, err := l.opts.openFile(filepath.Join(l.dir, fileName(next)), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("create %s: %w", fileName(next), err)
	}
	if !l.opts.NoSync {
		if err := syncDir(l.dir); err != nil {
			f.Close()
			return err
		}
	}
	old := l.f
	l.f, l.num, l.size = f, next, 0
	if err := old.Close(); err != nil {
		return fmt.Errorf("close %s: %w", fileName(next-1), err)
	}
	return nil
}

// syncDir makes a new directory entry durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync audit dir: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync audit dir: %w", err)
	}
	return nil
}

// Close syncs and closes the files and ends every subscription. Later
// Appends return ErrClosed.
func (l *Log) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	for ch := range l.subs {
		delete(l.subs, ch)
		close(ch)
	}
	err := l.repair()
	err = errors.Join(err, l.f.Sync(), l.hf.Sync(), l.f.Close(), l.hf.Close())
	if err != nil {
		return fmt.Errorf("close audit log: %w", err)
	}
	return nil
}

// Subscribe returns a channel that receives every record appended after the
// call, until ctx is done or the Log is closed, when it is closed. A
// subscriber more than subBuffer records behind is dropped (its channel is
// closed early) so that it cannot stall the daemon; it can catch up with
// Read from the last Seq it saw.
func (l *Log) Subscribe(ctx context.Context) <-chan Record {
	ch := make(chan Record, subBuffer)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		close(ch)
		return ch
	}
	l.subs[ch] = struct{}{}
	context.AfterFunc(ctx, func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		if _, ok := l.subs[ch]; ok {
			delete(l.subs, ch)
			close(ch)
		}
	})
	return ch
}

// notify hands r to each subscriber without blocking; l.mu is held.
func (l *Log) notify(r Record) {
	for ch := range l.subs {
		select {
		case ch <- r:
		default:
			delete(l.subs, ch)
			close(ch)
		}
	}
}
