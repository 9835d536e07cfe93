package audit

import (
	"errors"
	"fmt"
	"sync"
	"time"
)

// Group commit. Append writes its line under l.mu and then waits, with
// l.mu released, until a commit covers it. A commit takes every pending
// record, runs one fsync of the active file with l.mu released (appends
// keep writing meanwhile and queue for the next commit), then, under l.mu,
// points audit.head at the newest record it synced and acknowledges the
// batch in order: subscribers are notified and the waiting Appends return.
// A waiting Append that finds no commit running leads one itself, so a
// lone appender pays one fsync as before and N concurrent appenders share
// about one fsync per fsync time.
//
// Records nobody waits for (AppendAsync, and every Append in interval
// mode) are committed by the background committer: a timer armed when
// the first of them is written, which runs one commit and, if records
// were written meanwhile, arms itself again for the start of that commit
// plus the window. So the fsync that covers a record begins at most one
// window after the record was written, or as soon as the fsync running at
// that moment ends: that is the bound interval mode promises.
//
// The batch-failure rule: if a commit fails (its fsync or its head write),
// every record not yet acknowledged fails, both those in the batch and
// those written after the batch began. The later ones must fail too: their
// Prev hashes chain from records that are about to be cut. The active file
// is cut back to the end of the last acknowledged record, audit.head is
// pointed back at it, and the chain (seq, prev) is rolled back to it, so no
// sequence number is consumed and the next Append continues a valid chain.
//
// Interval mode cannot follow that rule: its records were acknowledged
// when they were written (a request went upstream on the strength of
// one), so cutting them would erase the record of something that
// happened. A failed fsync there fails the Log closed instead (see
// failClosed): nothing is cut, audit.head stays at the last record
// synced, every pending record is reported to Options.OnAsyncFail, and
// every later Append fails with ErrSyncFailed until the trail is reopened.
// It is final because a retried fsync proves nothing: after a failed
// writeback Linux marks the pages clean, so the next fsync can succeed
// although the records never reached the disk. A failed head write, whose
// fsync succeeded, is not final: the batch is durable and acknowledged,
// and appends fail until the head can be written, as in the other modes.

// waiter is an appended record whose line is written but not yet durable.
type waiter struct {
	rec  Record
	hash string // hash of its line
	end  int64  // offset just past its line in the active file
	done bool   // committed or failed; err tells which
	err  error
	// async: nobody awaits it (AppendAsync, or Append in interval mode);
	// the commit that ends it recycles it, and a failure is reported
	// through Options.OnAsyncFail.
	async bool
}

// finish ends w with err (nil: committed), recycling it if nobody awaits it.
// l.mu is held.
func (l *Log) finish(w *waiter, err error) {
	if !w.async {
		w.done, w.err = true, err
		return
	}
	if err != nil && l.opts.OnAsyncFail != nil {
		l.opts.OnAsyncFail(w.rec, err)
	}
	*w = waiter{}
	waiters.Put(w)
}

// waiters recycles waiters: one per Append would otherwise be the largest
// allocation on the daemon's request path.
var waiters = sync.Pool{New: func() any { return new(waiter) }}

// await returns once w is committed (nil) or has failed (its error), then
// recycles w: by then no commit refers to it. l.mu is held.
func (l *Log) await(w *waiter) error {
	for !w.done {
		l.step()
	}
	err := w.err
	*w = waiter{}
	waiters.Put(w)
	return err
}

// flush returns once every record written so far has been committed or
// has failed. Appends must be stopped (l.closed), or it may never return.
// l.mu is held.
func (l *Log) flush() {
	for l.syncing || len(l.pending) > 0 {
		l.step()
	}
}

// step waits for the running commit to end, or runs one if none is
// running and a record is pending. Callers loop on it and then look again
// at what they wait for. l.mu is held.
func (l *Log) step() {
	switch {
	case l.syncing:
		l.committed.Wait()
	case len(l.pending) > 0:
		l.commit()
	}
}

// commit makes every pending record durable with one fsync, anchors the
// head at the newest of them and acknowledges them in order, or fails them
// all (see fail). The fsync runs with l.mu released and l.syncing set, so
// that only one commit runs at a time and the active file is not rotated
// under it. l.mu is held on entry and on return; pending is not empty.
func (l *Log) commit() {
	defer l.committed.Broadcast()
	batch := l.pending
	last := batch[len(batch)-1]
	var err error
	if !l.opts.NoSync {
		f := l.f
		l.syncing = true
		l.mu.Unlock()
		err = f.Sync()
		l.mu.Lock()
		l.syncing = false
		if err != nil {
			err = fmt.Errorf("%w: %w", errSync, err)
		}
	}
	h := head{seq: last.rec.Seq, hash: last.hash}
	if err == nil {
		err = l.anchor(h)
	}
	if err != nil && l.interval() {
		if errors.Is(err, errSync) {
			l.failClosed(err)
			return
		}
		// The batch is durable; only its anchor failed. The next Append
		// rewrites the head first, or fails.
		l.dirty, err = true, nil
	}
	if err != nil {
		l.fail(err, len(batch))
		return
	}
	l.durable, l.durableSize = h, last.end
	for _, w := range batch {
		l.notify(w.rec)
		l.finish(w, nil)
	}
	n := copy(l.pending, l.pending[len(batch):])
	clear(l.pending[n:])
	l.pending = l.pending[:n]
}

// fail ends a commit of the first n pending records that failed with err:
// every pending record fails, the first n with err and the rest because
// they chain from those, and the chain and active file are rolled back to
// the last acknowledged record. If the cut itself fails, the Log stays
// dirty and each later Append retries it before writing. l.mu is held.
func (l *Log) fail(err error, n int) {
	l.seq, l.prev, l.size = l.durable.seq, l.durable.hash, l.durableSize
	l.dirty = true
	rerr := l.repair()
	first := l.pending[0].rec.Seq
	for i, w := range l.pending {
		werr := err
		if i >= n {
			werr = fmt.Errorf("chains from seq %d, whose commit failed: %w", first, err)
		}
		if rerr != nil {
			werr = errors.Join(werr, rerr)
		}
		l.finish(w, werr)
	}
	clear(l.pending)
	l.pending = l.pending[:0]
}

// failClosed ends a failed fsync in interval mode, in which the pending
// records were acknowledged as they were written: they stay in the file,
// each is reported to Options.OnAsyncFail, and every later Append fails
// (see the top of this file). l.mu is held.
func (l *Log) failClosed(err error) {
	if len(l.pending) == 0 {
		return
	}
	first := l.pending[0].rec.Seq
	l.broken = fmt.Errorf("%w: seq %d to %d were written but may not be on disk (%w); appends are refused until the trail is reopened",
		ErrSyncFailed, first, l.seq, err)
	for _, w := range l.pending {
		l.finish(w, l.broken)
	}
	clear(l.pending)
	l.pending = l.pending[:0]
}

// errSync marks a failed fsync of the active file among commit errors.
var errSync = errors.New("sync")

// armCommit arms the background committer to run in d, unless it is
// armed or running already. l.mu is held.
func (l *Log) armCommit(d time.Duration) {
	if l.committer || l.closed {
		return
	}
	l.committer = true
	l.commitTimer = l.opts.afterFunc(max(d, 0), l.commitAsync)
}

// commitAsync is the background committer: it commits what is pending,
// once the running commit (if any) has ended, and arms itself again for
// what was written during its fsync, due one window after that fsync
// began. Records nobody waits for have no Append to lead their commit.
func (l *Log) commitAsync() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for l.syncing {
		l.committed.Wait()
	}
	if len(l.pending) == 0 {
		l.committer = false
		return
	}
	began := l.opts.now()
	l.commit() // appends during its fsync find l.committer set and leave their records to us
	l.committer = false
	if len(l.pending) > 0 {
		l.armCommit(began.Add(l.window()).Sub(l.opts.now()))
	}
}

// window is how long after its write a record nobody waits for may wait
// for the fsync that commits it to begin.
func (l *Log) window() time.Duration {
	if l.interval() {
		return l.opts.SyncWindow
	}
	return asyncCommitDelay
}

// asyncCommitDelay bounds how long an AppendAsync record waits for an
// Append to share a commit with before one is run for it alone.
const asyncCommitDelay = 5 * time.Millisecond

// interval reports whether the Log runs in interval mode: Append returns
// once its line is written and the background committer syncs it.
func (l *Log) interval() bool { return l.opts.SyncWindow > 0 && !l.opts.NoSync }

// writeHead overwrites audit.head in place. It is not synced per commit: a
// head lost in a crash only lags the log, which Open repairs (see tail.go).
func (l *Log) writeHead(h head) error {
	l.hbuf = h.appendTo(l.hbuf[:0])
	if _, err := l.hf.WriteAt(l.hbuf, 0); err != nil {
		return fmt.Errorf("write head: %w", err)
	}
	l.headSeq, l.headAt = h.seq, time.Now()
	return nil
}

// DefaultHeadEvery is how often, at most, a busy trail rewrites audit.head.
const DefaultHeadEvery = 100 * time.Millisecond

// anchor points audit.head at h, the newest committed record. The head is
// written at once when its last write is Options.HeadEvery old or more;
// otherwise a timer writes the newest committed record when it is. A busy
// trail (every proxied request appends two records) so pays one head
// write per HeadEvery rather than one per commit, and the head lags the
// log by at most HeadEvery while the daemon runs, which Open and Verify
// accept: it is what a crash between a record and its head write leaves
// anyway. Rotation and Close write the head at once. l.mu is held.
func (l *Log) anchor(h head) error {
	since := time.Since(l.headAt)
	if since >= l.opts.HeadEvery {
		return l.writeHead(h)
	}
	if l.headTimer == nil {
		l.headTimer = time.AfterFunc(l.opts.HeadEvery-since, l.lateAnchor)
	}
	return nil
}

// lateAnchor writes the head a paced commit left lagging. A failure marks
// the log dirty, so the next Append repairs the head first, or fails: a
// head that cannot be written fails appends closed, as it did per commit.
func (l *Log) lateAnchor() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.headTimer = nil
	if l.closed || l.dirty || l.headSeq == l.durable.seq {
		return
	}
	if err := l.writeHead(l.durable); err != nil {
		l.dirty = true
	}
}

// catchUpHead writes the head now if it lags the newest committed record.
// l.mu is held.
func (l *Log) catchUpHead() error {
	if l.headSeq == l.durable.seq && !l.headAt.IsZero() {
		return nil
	}
	return l.writeHead(l.durable)
}

// repair undoes what a failure may have left: bytes past the last complete
// record written (a torn line, or records rolled back by fail), and a head
// that is torn or names a record that failed. The head is pointed at the
// last acknowledged record, never at a pending one. l.mu is held.
func (l *Log) repair() error {
	if !l.dirty {
		return nil
	}
	if err := l.f.Truncate(l.size); err != nil {
		return fmt.Errorf("cut back to offset %d: %w", l.size, err)
	}
	if err := l.writeHead(l.durable); err != nil {
		return err
	}
	if !l.opts.NoSync {
		if err := l.f.Sync(); err != nil {
			err = fmt.Errorf("sync after cut: %w", err)
			if l.interval() {
				l.failClosed(err) // it failed to sync acknowledged records too
			}
			return err
		}
		if err := l.hf.Sync(); err != nil {
			return fmt.Errorf("sync head after cut: %w", err)
		}
	}
	l.dirty = false
	return nil
}
