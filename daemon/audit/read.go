package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"time"
)

// followPoll is how often Follow looks for new records. Polling costs one
// read and one directory listing per tick, works on every platform without
// a file-notification dependency, and 200ms is below what a person watching
// `tokfence audit --follow` notices.
const followPoll = 200 * time.Millisecond

// Filter selects records for Read and Follow. Zero fields match everything.
type Filter struct {
	Session     string
	Agent       string
	Event       string
	Fingerprint string    // a secret's, from `tokfence audit hash`
	Since       time.Time // records stamped before Since are skipped
}

// Match reports whether r passes the filter.
func (f Filter) Match(r Record) bool {
	return (f.Session == "" || r.Session == f.Session) &&
		(f.Agent == "" || r.Agent == f.Agent) &&
		(f.Event == "" || r.Event == f.Event) &&
		(f.Fingerprint == "" || r.Fingerprint == f.Fingerprint) &&
		(f.Since.IsZero() || !r.Time.Before(f.Since))
}

// Position is a place in the trail: a file's number and the offset of
// the first line not yet read in it. The zero Position is the start.
type Position struct {
	File   int
	Offset int64
}

// Read calls fn for each record in dir that matches f, oldest first, across
// rotated files. A final line without a newline is an append in progress
// (or a torn write) and is skipped. Read does not check the chain; Verify
// does. An error from fn stops Read and is returned as is.
func Read(dir string, f Filter, fn func(Record) error) error {
	_, err := ReadTo(dir, f, fn)
	return err
}

// ReadTo is Read that also returns where it stopped: just past the last
// complete record, where FollowFrom goes on without a gap or a repeat.
func ReadTo(dir string, f Filter, fn func(Record) error) (Position, error) {
	nums, err := listFiles(dir)
	if err != nil {
		return Position{}, err
	}
	var pos Position
	for _, n := range nums {
		off, err := readFrom(dir, n, 0, f, fn)
		if err != nil {
			return pos, err
		}
		pos = Position{File: n, Offset: off}
	}
	return pos, nil
}

// End returns the position just past the last complete record in dir
// without reading the records: FollowFrom there delivers only what is
// written from then on, as tail -f does. A trail not yet created ends at
// the zero Position.
func End(dir string) (Position, error) {
	nums, err := listFiles(dir)
	if errors.Is(err, os.ErrNotExist) || (err == nil && len(nums) == 0) {
		return Position{}, nil
	}
	if err != nil {
		return Position{}, err
	}
	n := nums[len(nums)-1]
	off, err := lastLineEnd(filepath.Join(dir, fileName(n)))
	if err != nil {
		return Position{}, fmt.Errorf("read %s: %w", fileName(n), err)
	}
	return Position{File: n, Offset: off}, nil
}

// lastLineEnd returns the offset just past the last newline of the file
// at path, or 0 if it has none, reading backwards from its end.
func lastLineEnd(path string) (int64, error) {
	fh, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer fh.Close()
	fi, err := fh.Stat()
	if err != nil {
		return 0, err
	}
	buf := make([]byte, 64<<10)
	for end := fi.Size(); end > 0; {
		start := max(0, end-int64(len(buf)))
		b := buf[:end-start]
		if _, err := fh.ReadAt(b, start); err != nil {
			return 0, err
		}
		if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
			return start + int64(i) + 1, nil
		}
		end = start
	}
	return 0, nil
}

// readFrom calls fn for the matching complete records of file num from
// offset off on, and returns the offset just past the last complete line.
func readFrom(dir string, num int, off int64, f Filter, fn func(Record) error) (int64, error) {
	name := fileName(num)
	fh, err := os.Open(filepath.Join(dir, name))
	if err != nil {
		return off, fmt.Errorf("read %s: %w", name, err)
	}
	defer fh.Close()
	lr := newLineReader(io.NewSectionReader(fh, off, math.MaxInt64-off))
	for {
		line, complete, err := lr.next()
		if err == io.EOF || (err == nil && !complete) {
			return off + lr.off, nil
		}
		if err != nil {
			return off + lr.off, fmt.Errorf("read %s: %w", name, err)
		}
		var r Record
		if err := json.Unmarshal(line, &r); err != nil {
			return off + lr.off, fmt.Errorf("read %s at offset %d: %w", name, off+lr.off, err)
		}
		if f.Match(r) {
			if err := fn(r); err != nil {
				return off + lr.off, err
			}
		}
	}
}

// Follow calls fn for every matching record in dir, first those already
// written and then new ones as they are appended, following rotation into
// new files, until ctx is done; it then returns nil. It waits for a
// directory or file that does not exist yet. An error from fn, or a record
// that does not parse, stops Follow and is returned.
func Follow(ctx context.Context, dir string, f Filter, fn func(Record) error) error {
	return FollowFrom(ctx, dir, Position{}, f, fn)
}

// FollowFrom is Follow from pos on (from End or ReadTo) rather than from
// the start of the trail.
func FollowFrom(ctx context.Context, dir string, pos Position, f Filter, fn func(Record) error) error {
	fl := follower{dir: dir, filter: f, fn: fn, num: pos.File, off: pos.Offset}
	t := time.NewTicker(followPoll)
	defer t.Stop()
	for {
		if err := fl.poll(); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// follower is Follow's position: a file number and the offset of the
// first line not yet delivered.
type follower struct {
	dir    string
	filter Filter
	fn     func(Record) error
	num    int
	off    int64
}

// poll delivers everything written since the last poll.
func (fl *follower) poll() error {
	for {
		nums, err := listFiles(fl.dir)
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		if len(nums) == 0 {
			return nil
		}
		if fl.num == 0 {
			fl.num = nums[0]
		}
		if fl.off, err = readFrom(fl.dir, fl.num, fl.off, fl.filter, fl.fn); err != nil {
			return err
		}
		next := 0
		for _, n := range nums {
			if n > fl.num {
				next = n
				break
			}
		}
		if next == 0 {
			return nil
		}
		// The writer finished with fl.num before it created next, so one
		// more read here gets the records written since the one above.
		if _, err = readFrom(fl.dir, fl.num, fl.off, fl.filter, fl.fn); err != nil {
			return err
		}
		fl.num, fl.off = next, 0
	}
}
