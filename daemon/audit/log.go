package audit

import (
	"context"
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
	// NoSync skips the fsync that commits each append. Append is then no
	// longer durable across an OS crash or power loss (the file and head may lose
	// their newest records and Open may refuse the result), so it is meant
	// for tests and benchmarks. The field is negative so that the zero value
	// is the safe one.
	NoSync bool
	// SyncWindow, if positive, selects interval mode: Append returns once
	// its line is written (in the page cache, so a crash of the process
	// loses nothing) and the background committer begins the fsync that
	// covers it at most SyncWindow later (see commit.go). An OS crash or
	// power loss can then lose the records of about the last window, and
	// a failed fsync fails the Log closed (ErrSyncFailed). Zero is the
	// per-append fsync; at most MaxSyncWindow; ignored with NoSync.
	SyncWindow time.Duration
	// HeadEvery paces the rewrites of audit.head (see anchor);
	// DefaultHeadEvery if zero, every commit if negative.
	HeadEvery time.Duration
	// OnAsyncFail, if set, is told of a record AppendAsync wrote whose
	// commit then failed (the record was cut from the log).
	OnAsyncFail func(Record, error)

	// openFile opens the log and head files; a test hook for fault
	// injection. os.OpenFile if nil.
	openFile func(name string, flag int, perm os.FileMode) (file, error)
	// now and afterFunc run the background committer's clock and timer;
	// test hooks, time.Now and time.AfterFunc if nil.
	now       func() time.Time
	afterFunc func(time.Duration, func()) stopper
}

// stopper is the part of *time.Timer a Log uses.
type stopper interface{ Stop() bool }

const (
	// DefaultSyncWindow is the window of interval mode the daemon uses by
	// default: short against what it bounds (the records a power loss can
	// take), long against an fsync (a fraction of a millisecond to a few
	// milliseconds), so that a busy trail pays one per window.
	DefaultSyncWindow = 20 * time.Millisecond
	// MaxSyncWindow caps SyncWindow: past a second, what a power loss can
	// take is no longer "the last moment" (and ext4 itself commits every 5 s).
	MaxSyncWindow = time.Second
)

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

	mu  sync.Mutex
	f   file // active file, opened O_APPEND
	num int  // number of the active file
	hf  file // audit.head

	// The written end of the chain: the last record written to f, whether
	// or not it is durable yet. The next record chains from it.
	seq  uint64
	prev string // hash of the last written record's line
	size int64  // bytes of complete records written to the active file

	// The committed end of the chain: the last acknowledged record, which
	// is durable and is what audit.head names, and the offset just past it
	// in the active file. A failed commit rolls the written end back here.
	durable     head
	durableSize int64

	pending     []*waiter // written records not yet committed, in seq order
	syncing     bool      // a commit is running its fsync with mu released
	committer   bool      // the background committer is armed or running
	commitTimer stopper   // the background committer's timer, once armed
	committed   sync.Cond // broadcast when a commit ends; L is &mu

	dirty bool // a failure may have left bytes past size or a stale head
	// broken is set when an fsync fails in interval mode; every later
	// Append returns it (see failClosed).
	broken error
	closed bool
	buf    []byte // the line being written
	hbuf   []byte // the head being written
	// What audit.head names and when it was last written, and the timer
	// that writes a lagging head (see anchor).
	headSeq   uint64
	headAt    time.Time
	headTimer *time.Timer
	subs      map[chan Record]struct{}
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
	if opts.HeadEvery == 0 {
		opts.HeadEvery = DefaultHeadEvery
	}
	if opts.openFile == nil {
		opts.openFile = osOpenFile
	}
	if opts.now == nil {
		opts.now = time.Now
	}
	if opts.afterFunc == nil {
		opts.afterFunc = func(d time.Duration, f func()) stopper { return time.AfterFunc(d, f) }
	}
	if opts.SyncWindow < 0 || opts.SyncWindow > MaxSyncWindow {
		return nil, fmt.Errorf("open audit log: sync window %s is outside 0 to %s", opts.SyncWindow, MaxSyncWindow)
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
		durable: head{seq: rec.seq, hash: rec.hash}, durableSize: rec.size,
		subs: make(map[chan Record]struct{})}
	l.committed.L = &l.mu
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
		if err := syncDir(l.dir); err != nil {
			return err
		}
	}
	if rec.seq == 0 && !rec.hasHead {
		return l.anchorGenesis()
	}
	return nil
}

// anchorGenesis points the head of an empty trail at seq 0, durably, so
// that the trail has a head from its first record on: a record written
// and then cut short by a crash before its commit wrote the head (in
// interval mode, for a whole window) then leaves a head that lags, which
// Open repairs, rather than no head, which it must refuse.
func (l *Log) anchorGenesis() error {
	if err := l.writeHead(head{hash: genesis}); err != nil {
		return err
	}
	if l.opts.NoSync {
		return nil
	}
	if err := l.hf.Sync(); err != nil {
		return fmt.Errorf("sync head: %w", err)
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
// with a single write call, and returns it as written once the line is
// durable: unless Options.NoSync, it waits for an fsync that covers the
// line, one shared by every append that wrote while the previous fsync ran
// (group commit; see commit.go). On any failure it returns an error and the
// sequence number is not consumed, so a later Append continues the chain.
// An Append that shares a failed fsync fails too, as does every Append
// that wrote after that fsync began: see fail.
//
// In interval mode (Options.SyncWindow) it is AppendAsync: it returns once
// the line is written, and the background committer syncs it within the
// window. A failed write still fails it (and cuts the torn line); a
// failed fsync fails every later Append with ErrSyncFailed.
func (l *Log) Append(r Record) (Record, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	w, err := l.write(&r)
	switch {
	case err != nil:
	case l.interval():
		l.background(w)
	default:
		err = l.await(w)
	}
	return r, appendErr(r, err)
}

// appendErr wraps an append's error with the record's sequence number, if
// it got one; nil stays nil.
func appendErr(r Record, err error) error {
	switch {
	case err == nil:
		return nil
	case r.Seq == 0:
		return fmt.Errorf("append audit record: %w", err)
	}
	return fmt.Errorf("append audit record seq %d: %w", r.Seq, err)
}

// AppendAsync is Append without the wait for durability: it returns once
// the line is written and queued for the next commit. That is the commit
// of the next Append if one comes within asyncCommitDelay (so a request's
// completion record shares the fsync of the next request's record instead
// of costing one of its own), or else one the background committer runs
// then (in interval mode, within the window). It is for records nothing is
// acted on because of, such as a request's completion after the request
// itself was appended: in an OS crash or power loss before that commit
// such a record can be lost, never a record an Append returned (in
// interval mode, an Append's record too). A commit that fails cuts the
// record as it would an Append's (see fail) and reports it to
// Options.OnAsyncFail; in interval mode it stays in the file and is
// reported (see failClosed). With Options.NoSync there is no fsync to wait
// for and it is Append.
func (l *Log) AppendAsync(r Record) (Record, error) {
	if l.opts.NoSync {
		return l.Append(r)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	w, err := l.write(&r)
	if err != nil {
		return r, appendErr(r, err)
	}
	l.background(w)
	return r, nil
}

// background leaves w, just written, to the background committer.
// l.mu is held.
func (l *Log) background(w *waiter) {
	w.async = true
	l.armCommit(l.window())
}

// write assigns r its place in the chain and writes its line to the active
// file, rotating first when the line would overflow it. The line is not
// yet durable: the returned waiter learns when it is. l.mu is held.
func (l *Log) write(r *Record) (*waiter, error) {
	if r.Event == "" {
		return nil, errors.New("empty event")
	}
	for {
		if l.closed {
			return nil, ErrClosed
		}
		if l.broken != nil {
			return nil, l.broken
		}
		if err := l.repair(); err != nil {
			return nil, err
		}
		r.Seq, r.Prev = l.seq+1, l.prev
		if r.Time.IsZero() {
			r.Time = l.opts.Clock().UTC()
		}
		line, err := l.encode(r)
		if err != nil {
			return nil, err
		}
		if l.size == 0 || l.size+int64(len(line)) <= l.opts.MaxFileBytes {
			return l.writeLine(*r, line)
		}
		if l.syncing || len(l.pending) > 0 {
			// A rotation is a group boundary: the old file's records are
			// committed first. A step releases l.mu, after which another
			// append may have rotated, or a failed commit rolled the chain
			// back, so look again from the top.
			l.step()
			continue
		}
		if err := l.rotate(); err != nil {
			return nil, fmt.Errorf("rotate: %w", err)
		}
	}
}

// encode returns r as one line ending in a newline, in l.buf.
func (l *Log) encode(r *Record) ([]byte, error) {
	line, err := r.appendJSON(l.buf[:0])
	if err != nil {
		return nil, fmt.Errorf("encode record: %w", err)
	}
	line = append(line, '\n')
	l.buf = line
	if len(line) > maxLine {
		l.buf = nil // do not keep an oversized buffer
		return nil, ErrTooLarge
	}
	return line, nil
}

// writeLine writes line, the encoding of r, with one write call and queues
// it for the next commit. A failed write is cut back at once; the records
// queued before it are unaffected. l.mu is held.
func (l *Log) writeLine(r Record, line []byte) (*waiter, error) {
	n, err := l.f.Write(line)
	if err == nil && n != len(line) {
		err = io.ErrShortWrite
	}
	if err != nil {
		err = fmt.Errorf("write: %w", err)
		l.dirty = true
		if rerr := l.repair(); rerr != nil {
			err = errors.Join(err, rerr)
		}
		return nil, err
	}
	hash := lineHash(line[:len(line)-1])
	l.size += int64(len(line))
	l.seq, l.prev = r.Seq, hash
	w := waiters.Get().(*waiter)
	w.rec, w.hash, w.end = r, hash, l.size
	l.pending = append(l.pending, w)
	return w, nil
}

// rotate makes the next numbered file active. Every record of the old file
// is committed (write commits them first), so the head names its last record; the
// head is synced so that after a crash it never lags into an earlier file
// than the active one, which is all Open scans. l.mu is held.
func (l *Log) rotate() error {
	if err := l.catchUpHead(); err != nil {
		return err
	}
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
	l.f, l.num, l.size, l.durableSize = f, next, 0, 0
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

// Close commits the appends already written, syncs and closes the files
// and ends every subscription. Later Appends return ErrClosed. A Log that
// failed closed (ErrSyncFailed) still closes, and returns that error.
func (l *Log) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	l.flush()
	for ch := range l.subs {
		delete(l.subs, ch)
		close(ch)
	}
	if l.headTimer != nil {
		l.headTimer.Stop()
	}
	if l.commitTimer != nil {
		l.commitTimer.Stop()
	}
	err := l.repair()
	if err == nil {
		err = l.catchUpHead()
	}
	err = errors.Join(l.broken, err, l.f.Sync(), l.hf.Sync(), l.f.Close(), l.hf.Close())
	if err != nil {
		return fmt.Errorf("close audit log: %w", err)
	}
	return nil
}

// Subscribe returns a channel that receives every record appended after the
// call, in order, as each is acknowledged (committed), until ctx is done or the Log is closed, when it is closed. A
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
