package audit

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
)

// Result summarises a verified trail. Unanchored counts records after the
// one named by audit.head: records appended while Verify ran or in the
// last HeadEvery of a running daemon, or the last records before a crash.
// They chain correctly but the head does not vouch for them yet. Pending
// counts the bytes of an unfinished final line in the newest file: an
// append in progress, or a write torn by a crash that the next Open cuts
// and records. Neither can hide a record the head vouches for.
type Result struct {
	Records    int
	Files      int
	First      uint64
	Last       uint64
	Unanchored int
	Pending    int64
}

// Verify checks the whole trail in dir: every line parses, sequence numbers
// run from 1 without gaps, each Prev is the hash of the line before it
// (across files), no file is missing, and the newest records match
// audit.head. On a break it returns a *BreakError naming the first record it
// cannot vouch for; other errors are I/O failures.
func Verify(dir string) (Result, error) {
	// The head is read before the files so that, against a live daemon,
	// the head can only lag the records read, never run ahead of them.
	h, err := readHead(dir)
	// A read racing the daemon's in-place head update can see half of it;
	// the update takes microseconds, so a few immediate re-reads settle it.
	var be *BreakError
	for i := 0; i < 3 && errors.As(err, &be); i++ {
		runtime.Gosched()
		h, err = readHead(dir)
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return Result{}, err
	}
	hasHead := err == nil
	if hasHead && h.seq == 0 && h.hash != genesis {
		return Result{}, &BreakError{File: headName, Line: 1, Reason: "head anchor names seq 0 with a hash other than genesis"}
	}
	nums, err := listFiles(dir)
	if err != nil {
		return Result{}, err
	}
	var res Result
	c := chain{hash: genesis, seeded: true}
	for i, n := range nums {
		if n != i+1 {
			return res, &BreakError{File: fileName(n), Line: 1, Reason: fmt.Sprintf("log file %s is missing", fileName(i+1))}
		}
		pending, err := verifyFile(dir, n, &c, h, hasHead, i == len(nums)-1)
		if err != nil {
			return res, err
		}
		res.Pending = pending
		res.Files++
	}
	res.Records = int(c.seq)
	if c.seq > 0 {
		res.First, res.Last = 1, c.seq
	}
	switch {
	case hasHead && h.seq > c.seq:
		return res, &BreakError{File: c.lastFile(nums), Line: c.line + 1, Seq: c.seq + 1,
			Reason: fmt.Sprintf("log ends at seq %d but %s names seq %d: records removed from the end", c.seq, headName, h.seq)}
	case !hasHead && c.seq > 0:
		return res, &BreakError{File: headName, Seq: c.seq, Reason: "head anchor missing"}
	case hasHead:
		res.Unanchored = int(c.seq - h.seq)
	}
	return res, nil
}

// verifyFile feeds every line of file n to c and checks the record named by
// the head against it. It returns the length of an unfinished final line,
// which only the newest file may have.
func verifyFile(dir string, n int, c *chain, h head, hasHead, newest bool) (int64, error) {
	name := fileName(n)
	f, err := os.Open(filepath.Join(dir, name))
	if err != nil {
		return 0, fmt.Errorf("verify %s: %w", name, err)
	}
	defer f.Close()
	lr := newLineReader(f)
	for {
		line, complete, err := lr.next()
		switch {
		case err == io.EOF:
			return 0, nil
		case err != nil:
			return 0, lineError(name, lr.line, err)
		case !complete && newest:
			return int64(len(line)), nil
		case !complete:
			return 0, &BreakError{File: name, Line: lr.line, Reason: "final line of an archived file has no newline: truncated"}
		}
		if _, be := c.add(line, name, lr.line); be != nil {
			return 0, be
		}
		if hasHead && c.seq == h.seq && c.hash != h.hash {
			return 0, &BreakError{File: name, Line: lr.line, Seq: c.seq,
				Reason: fmt.Sprintf("record does not match %s: edited", headName)}
		}
	}
}

// lineError turns a read failure into a break when the file content is at
// fault, and wraps it otherwise.
func lineError(name string, line int, err error) error {
	if errors.Is(err, errLineTooLong) {
		return &BreakError{File: name, Line: line, Reason: err.Error()}
	}
	return fmt.Errorf("read %s line %d: %w", name, line, err)
}

// chain is the running state of a hash-chain check.
type chain struct {
	seq    uint64 // seq of the last accepted record; 0 before the first
	hash   string // hash of the last accepted line
	seeded bool   // whether seq and hash are known before the first record
	file   string // position of the last accepted record, for naming it
	line   int
}

// add checks one complete line (without its newline) against the chain and
// advances the chain on success.
func (c *chain) add(b []byte, file string, line int) (Record, *BreakError) {
	var r Record
	if err := json.Unmarshal(b, &r); err != nil {
		return r, &BreakError{File: file, Line: line, Reason: fmt.Sprintf("record does not parse: %v", err)}
	}
	if c.seeded || c.seq > 0 {
		if r.Seq != c.seq+1 {
			return r, &BreakError{File: file, Line: line, Seq: r.Seq,
				Reason: fmt.Sprintf("seq %d where %d was expected: records missing or out of order", r.Seq, c.seq+1)}
		}
		if r.Prev != c.hash {
			if c.seq == 0 {
				return r, &BreakError{File: file, Line: line, Seq: r.Seq, Reason: "first record does not carry the genesis prev"}
			}
			return r, &BreakError{File: c.file, Line: c.line, Seq: c.seq,
				Reason: fmt.Sprintf("hash does not match the prev of seq %d: this record (or that prev) was edited", r.Seq)}
		}
	} else if r.Seq == 0 || len(r.Prev) != len(genesis) {
		return r, &BreakError{File: file, Line: line, Seq: r.Seq, Reason: "record has no seq or a malformed prev"}
	}
	c.seq, c.hash, c.file, c.line = r.Seq, lineHash(b), file, line
	return r, nil
}

// lastFile names the file a missing tail would have been in.
func (c *chain) lastFile(nums []int) string {
	if c.file != "" {
		return c.file
	}
	if len(nums) > 0 {
		return fileName(nums[len(nums)-1])
	}
	return fileName(1)
}

var errLineTooLong = fmt.Errorf("line longer than %d bytes", maxLine)

// lineReader splits a file into lines with bounded memory and tracks the
// offset where the next line starts.
type lineReader struct {
	r    *bufio.Reader
	buf  []byte
	off  int64 // offset of the start of the next line
	line int   // 1-based number of the line last returned
}

func newLineReader(r io.Reader) *lineReader {
	return &lineReader{r: bufio.NewReaderSize(r, 64<<10)}
}

// next returns the next line without its newline and reports whether it
// was complete. It returns io.EOF when no bytes are left. The slice is
// valid until the next call.
func (lr *lineReader) next() ([]byte, bool, error) {
	lr.buf = lr.buf[:0]
	for {
		chunk, err := lr.r.ReadSlice('\n')
		if len(lr.buf)+len(chunk) > maxLine+1 {
			lr.line++
			return nil, false, errLineTooLong
		}
		lr.buf = append(lr.buf, chunk...)
		switch {
		case err == nil:
			lr.line++
			lr.off += int64(len(lr.buf))
			return lr.buf[:len(lr.buf)-1], true, nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case err == io.EOF && len(lr.buf) > 0:
			lr.line++
			return lr.buf, false, nil
		default:
			return nil, false, err
		}
	}
}

// listFiles returns the numbers of the log files in dir, ascending.
func listFiles(dir string) ([]int, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list audit dir: %w", err)
	}
	var nums []int
	for _, e := range ents {
		if n, ok := parseFileName(e.Name()); ok && e.Type().IsRegular() {
			nums = append(nums, n)
		}
	}
	slices.Sort(nums)
	return nums, nil
}
