package audit

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
)

// head is the anchor kept in audit.head: the seq and line hash of the newest
// record. Its encoding has a fixed length, so an update is one write at
// offset 0 of the same size and never needs a truncate.
type head struct {
	seq  uint64
	hash string
}

const (
	headPrefix = "tokfence-audit-head v1 seq="
	headMid    = " sha256="
	headLen    = len(headPrefix) + 20 + len(headMid) + 64 + 1
)

// encode returns the fixed-length text form of h.
func (h head) encode() []byte { return h.appendTo(nil) }

// appendTo appends the fixed-length text form of h to b.
func (h head) appendTo(b []byte) []byte {
	b = append(b, headPrefix...)
	n := len(b)
	b = append(b, "00000000000000000000"...)
	seq := strconv.AppendUint(b[len(b):], h.seq, 10)
	copy(b[n+20-len(seq):n+20], seq)
	b = append(b, headMid...)
	b = append(b, h.hash...)
	return append(b, '\n')
}

// readHead reads audit.head. A missing or empty head returns an error
// matching os.ErrNotExist; a malformed one returns a *BreakError.
func readHead(dir string) (head, error) {
	b, err := os.ReadFile(filepath.Join(dir, headName))
	if err != nil {
		return head{}, fmt.Errorf("read %s: %w", headName, err)
	}
	if len(b) == 0 {
		return head{}, fmt.Errorf("read %s: empty: %w", headName, os.ErrNotExist)
	}
	bad := &BreakError{File: headName, Line: 1, Reason: "head anchor malformed"}
	if len(b) != headLen || string(b[:len(headPrefix)]) != headPrefix || b[headLen-1] != '\n' {
		return head{}, bad
	}
	rest := b[len(headPrefix) : headLen-1]
	seq, err := strconv.ParseUint(string(rest[:20]), 10, 64)
	if err != nil || string(rest[20:20+len(headMid)]) != headMid {
		return head{}, bad
	}
	h := head{seq: seq, hash: string(rest[20+len(headMid):])}
	if !isHex(h.hash) {
		return head{}, bad
	}
	return h, nil
}

func isHex(s string) bool {
	for _, c := range []byte(s) {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// fileScan is what Open learns from the newest non-empty file.
type fileScan struct {
	num       int
	records   int
	firstSeq  uint64
	firstPrev string
	last      chain  // seq and hash of the last complete record
	atHead    string // hash of the record with the head's seq, if seen
	goodOff   int64  // offset just past the last complete line
	torn      int64  // bytes after goodOff: a torn final line
}

// scanFile checks the chain inside file num and records what Open needs.
func scanFile(dir string, num int, headSeq uint64) (fileScan, error) {
	name := fileName(num)
	// The first file's chain is known to start at genesis; a later file's
	// start is checked by Verify against the file before it.
	s := fileScan{num: num, last: chain{hash: genesis, seeded: num == 1}}
	f, err := os.Open(filepath.Join(dir, name))
	if err != nil {
		return s, fmt.Errorf("open %s: %w", name, err)
	}
	defer f.Close()
	lr := newLineReader(f)
	for {
		line, complete, err := lr.next()
		if err == io.EOF {
			return s, nil
		}
		if err != nil {
			return s, lineError(name, lr.line, err)
		}
		if !complete {
			s.torn = int64(len(line))
			return s, nil
		}
		r, be := s.last.add(line, name, lr.line)
		if be != nil {
			return s, be
		}
		if s.records == 0 {
			s.firstSeq, s.firstPrev = r.Seq, r.Prev
		}
		if r.Seq == headSeq {
			s.atHead = s.last.hash
		}
		s.records++
		s.goodOff = lr.off
	}
}

// recovery is the state Open resumes from.
type recovery struct {
	seq     uint64
	hash    string
	active  int   // number of the active file
	size    int64 // size of the active file once a torn line is cut
	torn    int64 // bytes of a torn final line to cut
	headLag uint64
	hasHead bool // audit.head names a record (or seq 0)
}

// recoverState finds the end of the chain in dir and checks it against the
// head. It changes nothing on disk.
func recoverState(dir string, nums []int) (recovery, error) {
	h, err := readHead(dir)
	hasHead := err == nil
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return recovery{}, err
	}
	rec := recovery{hash: genesis, active: 1, hasHead: hasHead}
	if len(nums) > 0 {
		rec.active = nums[len(nums)-1]
	}
	// Walk back from the active file to the newest one holding a record:
	// the active file may be empty (or hold only a torn line) just after a
	// rotation.
	s := fileScan{num: rec.active, last: chain{hash: genesis}}
	for i := len(nums) - 1; i >= 0; i-- {
		if s, err = scanFile(dir, nums[i], h.seq); err != nil {
			return rec, err
		}
		if s.num == rec.active {
			rec.size, rec.torn = s.goodOff, s.torn
		} else if s.torn > 0 {
			return rec, &BreakError{File: fileName(s.num), Line: s.records + 1, Reason: "torn line in an archived file"}
		}
		if s.records > 0 {
			break
		}
	}
	rec.seq, rec.hash = s.last.seq, s.last.hash
	if err := checkHead(rec, s, h, hasHead); err != nil {
		return rec, err
	}
	if hasHead {
		rec.headLag = rec.seq - h.seq
	}
	return rec, nil
}

// checkHead accepts the head if it names the last record, or an earlier
// record of the same file (a crash between writing a record and the head).
// Anything else means records were edited or removed.
func checkHead(rec recovery, s fileScan, h head, hasHead bool) error {
	broken := func(reason string) error {
		return &BreakError{File: fileName(s.num), Line: s.records, Seq: rec.seq, Reason: reason}
	}
	switch {
	case !hasHead && rec.seq == 0:
		return nil
	case !hasHead:
		return broken("head anchor missing")
	case h.seq > rec.seq:
		return broken(fmt.Sprintf("log ends at seq %d but %s names seq %d: records removed from the end", rec.seq, headName, h.seq))
	case h.seq == rec.seq && h.hash != rec.hash:
		return broken(fmt.Sprintf("last record does not match %s: edited", headName))
	case h.seq == rec.seq:
		return nil
	case s.records > 0 && h.seq+1 == s.firstSeq && h.hash == s.firstPrev:
		return nil
	case s.atHead != "" && s.atHead == h.hash:
		return nil
	}
	return broken(fmt.Sprintf("%s (seq %d) does not match the record it names", headName, h.seq))
}
