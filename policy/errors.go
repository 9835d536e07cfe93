package policy

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
)

// Error is one problem in a policy file. Its message reads like a compiler's,
// "policy.toml:12: rule[2].to: unknown state \"PURPLE\" (want GREEN, YELLOW,
// ORANGE or RED)", so an editor can jump to it. Indexes in Key count from 1,
// as a person counts the [[rule]] tables in a file.
type Error struct {
	File string // the file name as given to Parse
	Line int    // 1-based; 0 if no line could be found
	Key  string // the offending key, such as "rule[2].to"; may be empty
	Msg  string
}

// Error formats e as "file:line: key: message".
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	if e.Key != "" {
		b.WriteString(": " + e.Key)
	}
	b.WriteString(": " + e.Msg)
	return b.String()
}

// Errors is every problem found in one policy file, in line order. Parse
// reports them all at once so that a user fixes a file in one pass.
type Errors []*Error

// maxErrors bounds a report: past this many, the file is probably not a
// policy file at all and more lines would only bury the first.
const maxErrors = 20

// Error joins the problems, one per line.
func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap returns the individual errors, so errors.As finds an *Error.
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// problems collects errors for one file, resolving keys to lines.
type problems struct {
	file string
	ix   *keyIndex
	errs Errors
}

// add records a problem with key p.
func (ps *problems) add(p path, format string, args ...any) {
	ps.errs = append(ps.errs, &Error{
		File: ps.file,
		Line: ps.ix.line(p),
		Key:  string(p),
		Msg:  fmt.Sprintf(format, args...),
	})
}

// err returns the problems sorted by line, or nil if there are none.
func (ps *problems) err() error {
	if len(ps.errs) == 0 {
		return nil
	}
	slices.SortStableFunc(ps.errs, func(a, b *Error) int { return cmp.Compare(a.Line, b.Line) })
	if len(ps.errs) > maxErrors {
		more := len(ps.errs) - maxErrors
		ps.errs = append(ps.errs[:maxErrors], &Error{File: ps.file, Msg: fmt.Sprintf("and %d more problems", more)})
	}
	return ps.errs
}

// mismatch matches the decoder's type errors, which are plain errors that
// carry the line only in their text.
var mismatch = regexp.MustCompile(`^toml: line (\d+) \(last key "([^"]*)"\): (.*)$`)

// decodeError turns a decoder error into an Errors naming file and line.
func decodeError(filename string, data []byte, err error) error {
	var pe toml.ParseError
	if errors.As(err, &pe) {
		line := pe.Position.Line
		if st := pe.Position.Start; st >= 0 && st <= len(data) {
			// The decoder puts an error at a newline on the next line;
			// counting from the byte offset puts it where the eye looks.
			line = 1 + bytes.Count(data[:st], []byte("\n"))
		}
		return Errors{{File: filename, Line: line, Msg: tidyMessage(pe.Message)}}
	}
	msg := err.Error()
	if m := mismatch.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return Errors{{File: filename, Line: line, Key: m[2], Msg: m[3]}}
	}
	return Errors{{File: filename, Msg: strings.TrimPrefix(msg, "toml: ")}}
}

// tidyMessage makes a decoder message read like ours: lower-case first
// letter, and words for the invisible characters it quotes.
func tidyMessage(s string) string {
	s = strings.NewReplacer(`'\n'`, "end of line", `'\x00'`, "end of file", `'\r'`, "carriage return").Replace(s)
	if s == "" || strings.HasPrefix(s, "TOML") {
		return s
	}
	return strings.ToLower(s[:1]) + s[1:]
}
