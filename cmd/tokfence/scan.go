package main

import (
	"bufio"
	"bytes"
	"cmp"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/tokfence/tokfence/cmd/tokfence/internal/gitignore"
	"github.com/tokfence/tokfence/sensor"
)

func scanCommand() *cli.Command {
	return &cli.Command{
		Name:  "scan",
		Usage: "scan files, directories (or stdin) for secrets with the daemon's sensors; exit 1 when anything is found",
		UsageText: "tokfence scan [--secrets FILE] [--json] [PATH...]\n\n" +
			"A PATH is a file, a directory (walked, skipping .git and what the .gitignore\n" +
			"files ignore) or - for stdin, the default. A hit prints as\n" +
			"PATH:LINE:COLUMN: RULE (CLASS, ENCODING) fingerprint FP, both 1-based, the column\n" +
			"in bytes as Go and most compilers count it. A file whose first non-blank bytes\n" +
			"are SSE fields (data:, event:, id:, retry:) is scanned as an SSE stream, so a\n" +
			"secret split across events is found; one starting with { or [ as JSON; others\n" +
			"by extension (.sse, .json, .jsonl). Exit 0 clean, 1 on a hit, 2 if a PATH\n" +
			"could not be read (the others are still scanned).\n\nExamples:\n" +
			"   git diff --cached | tokfence scan\n   tokfence scan --secrets known.txt src/\n   tokfence scan --json capture.log",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "secrets", Usage: "`FILE` of known secrets, one per line, matched in every encoding"},
			&cli.BoolFlag{Name: "json", Usage: "print one JSON object per hit"},
		},
		Action: runScan,
	}
}

// scanHit is one line of `tokfence scan` output.
type scanHit struct {
	File        string `json:"file"`
	Line        int64  `json:"line"`   // 1-based
	Column      int64  `json:"column"` // 1-based, in bytes
	Offset      int64  `json:"offset"` // bytes from the start of the file
	Rule        string `json:"rule"`
	Class       string `json:"class"`
	Encoding    string `json:"encoding"`
	Fingerprint string `json:"fingerprint"`
}

// stdinName is how hits in stdin are named, as compilers name it.
const stdinName = "<stdin>"

// runScan exits 0 when clean, 1 when anything is found, 2 on error.
func runScan(c *cli.Context) error {
	m, err := scanMatcher(c.String("secrets"))
	if err != nil {
		return cli.Exit(err, 2)
	}
	s := &scanner{m: m, out: c.App.Writer, errw: c.App.ErrWriter, json: c.Bool("json")}
	paths := c.Args().Slice()
	if len(paths) == 0 {
		paths = []string{"-"}
	}
	for _, p := range paths {
		s.path(c.App.Reader, p)
	}
	switch {
	case s.failed > 0:
		return cli.Exit("", 2)
	case s.found > 0:
		return cli.Exit("", 1)
	}
	return nil
}

// scanner scans paths and prints what it finds as it goes.
type scanner struct {
	m      *sensor.Matcher
	out    io.Writer
	errw   io.Writer
	json   bool
	found  int
	failed int
}

// path scans one command-line PATH: stdin, a file or a directory.
func (s *scanner) path(stdin io.Reader, p string) {
	if p == "-" {
		s.report(stdinName, s.stream(stdin, stdinName))
		return
	}
	fi, err := os.Stat(p)
	if err != nil {
		s.fail(p, err)
		return
	}
	if !fi.IsDir() {
		s.file(p)
		return
	}
	err = gitignore.Walk(p, func(name string, err error) error {
		if err != nil {
			s.fail(name, err)
		} else {
			s.file(name)
		}
		return nil
	})
	if err != nil {
		s.fail(p, err)
	}
}

func (s *scanner) fail(name string, err error) {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err // the name is said once
	}
	s.failed++
	fmt.Fprintf(s.errw, "tokfence: error: scan %s: %v\n", name, err)
}

// file scans the file at name. A regular file is read again to place
// the hits in lines (memory stays flat, however long the file); anything
// else (a pipe, /dev/stdin) has its line starts kept as it is read.
func (s *scanner) file(name string) {
	f, err := os.Open(name)
	if err != nil {
		s.fail(name, err)
		return
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		s.report(name, s.stream(f, name))
		return
	}
	hits, err := s.scan(f, name)
	if err != nil {
		s.fail(name, err) // and still print what was found before it
	}
	if len(hits) == 0 {
		return
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		s.fail(name, err)
		return
	}
	pos, err := positions(f, hits)
	if err != nil {
		s.fail(name, err)
		return
	}
	s.print(name, hits, pos)
}

// scanResult is what stream found, or why it could not.
type scanResult struct {
	hits []sensor.Hit
	pos  []linePos
	err  error
}

// stream scans r, which can be read only once, keeping its line starts.
func (s *scanner) stream(r io.Reader, name string) scanResult {
	var ls lineStarts
	hits, err := s.scan(io.TeeReader(r, &ls), name)
	res := scanResult{hits: hits, err: err}
	for _, h := range hits {
		res.pos = append(res.pos, ls.position(h.Offset))
	}
	return res
}

func (s *scanner) report(name string, res scanResult) {
	if res.err != nil {
		s.fail(name, res.err)
	}
	s.print(name, res.hits, res.pos)
}

func (s *scanner) print(name string, hits []sensor.Hit, pos []linePos) {
	for i, h := range hits {
		s.found++
		row := scanHit{File: name, Line: pos[i].line, Column: pos[i].col, Offset: h.Offset, Rule: h.Rule,
			Class: string(h.Class), Encoding: h.Encoding, Fingerprint: h.Fingerprint}
		if s.json {
			json.NewEncoder(s.out).Encode(row)
			continue
		}
		fmt.Fprintf(s.out, "%s:%d:%d: %s (%s, %s) fingerprint %s\n", row.File, row.Line, row.Column,
			row.Rule, row.Class, row.Encoding, row.Fingerprint)
	}
}

// scan scans r with a content type judged by its first bytes (see
// contentType) and, failing that, by name.
func (s *scanner) scan(r io.Reader, name string) ([]sensor.Hit, error) {
	br := bufio.NewReaderSize(r, 32<<10)
	head, _ := br.Peek(sniffLen) // a short or failed peek leaves the error to the read
	return sensor.ScanReader(br, s.m, sensor.Request, contentType(head, name))
}

// sniffLen is how much of a file's start decides its content type: enough
// for a byte-order mark and a screenful of blank lines.
const sniffLen = 512

// contentType returns the content type of a body that begins with head
// (at most sniffLen bytes), else the one its name's extension gives.
// SSE is what matters: only an SSE stream has its events' text deltas
// joined, so that a secret split across events is found.
func contentType(head []byte, name string) string {
	b := bytes.TrimLeft(bytes.TrimPrefix(head, []byte("\xef\xbb\xbf")), " \t\r\n")
	for _, field := range []string{"data:", "event:", "id:", "retry:"} {
		if bytes.HasPrefix(b, []byte(field)) {
			return "text/event-stream"
		}
	}
	if len(b) > 0 && (b[0] == '{' || b[0] == '[') {
		return "application/json"
	}
	switch strings.ToLower(filepath.Ext(name)) {
	case ".json", ".jsonl", ".ndjson":
		return "application/json"
	case ".sse":
		return "text/event-stream"
	}
	return "text/plain"
}

// linePos is a 1-based line and byte column.
type linePos struct{ line, col int64 }

// lineStarts records the offsets where lines start in what is written to
// it: 8 bytes a line, for input that cannot be read twice.
type lineStarts struct {
	n      int64
	starts []int64 // of the second line on
}

func (l *lineStarts) Write(p []byte) (int, error) {
	for i := 0; ; {
		j := bytes.IndexByte(p[i:], '\n')
		if j < 0 {
			break
		}
		i += j + 1
		l.starts = append(l.starts, l.n+int64(i))
	}
	l.n += int64(len(p))
	return len(p), nil
}

func (l *lineStarts) position(off int64) linePos {
	i := sort.Search(len(l.starts), func(i int) bool { return l.starts[i] > off })
	start := int64(0)
	if i > 0 {
		start = l.starts[i-1]
	}
	return linePos{line: int64(i) + 1, col: off - start + 1}
}

// positions reads r from its start until the last hit and returns each
// hit's line and column, keeping nothing but a count.
func positions(r io.Reader, hits []sensor.Hit) ([]linePos, error) {
	order := make([]int, len(hits))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return cmp.Compare(hits[a].Offset, hits[b].Offset) })
	out := make([]linePos, len(hits))
	br := bufio.NewReaderSize(r, 64<<10)
	lc := lineCounter{line: 1}
	for _, i := range order {
		if _, err := io.CopyN(&lc, br, hits[i].Offset-lc.n); err != nil {
			return nil, fmt.Errorf("read again to place the hits: %w", err)
		}
		out[i] = linePos{line: lc.line, col: hits[i].Offset - lc.start + 1}
	}
	return out, nil
}

// lineCounter counts the lines in what is written to it.
type lineCounter struct {
	n     int64 // bytes written
	line  int64 // the line byte n is on, 1-based
	start int64 // the offset where that line starts
}

func (l *lineCounter) Write(p []byte) (int, error) {
	for i := 0; ; {
		j := bytes.IndexByte(p[i:], '\n')
		if j < 0 {
			break
		}
		i += j + 1
		l.line, l.start = l.line+1, l.n+int64(i)
	}
	l.n += int64(len(p))
	return len(p), nil
}

// scanMatcher builds the sensors: format rules always, plus the known
// secrets of the --secrets file in every encoding. The fingerprint key is
// random per run: fingerprints tell hits apart within one report only.
func scanMatcher(secretsFile string) (*sensor.Matcher, error) {
	var secrets []sensor.Secret
	if secretsFile != "" {
		b, err := os.ReadFile(secretsFile)
		if err != nil {
			return nil, fmt.Errorf("read --secrets: %w", err)
		}
		sc := bufio.NewScanner(bytes.NewReader(b))
		sc.Buffer(make([]byte, 64<<10), 64<<10)
		for n := 1; sc.Scan(); n++ {
			line := strings.TrimSpace(sc.Text())
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			secrets = append(secrets, sensor.Secret{ID: fmt.Sprintf("%s:%d", secretsFile, n), Class: sensor.ClassProviderKey, Value: []byte(line)})
		}
		if err := sc.Err(); err != nil {
			return nil, fmt.Errorf("read --secrets: %w", err)
		}
	}
	key := make([]byte, 32)
	rand.Read(key)
	return sensor.NewMatcher(secrets, sensor.Options{FormatRules: true, FingerprintKey: key})
}
