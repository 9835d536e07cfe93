// Package tomlfile places problems in TOML files by file, line and key, so
// that the policy file and the daemon's config file report errors alike and
// the way compilers do ("policy.toml:12: rule[2].to: unknown state"), for
// an editor to jump to.
//
// BurntSushi/toml reports positions for syntax errors but keeps the
// positions of keys private, so problems found after decoding (an unknown
// key, a value out of range) are placed by Index, a light line scanner.
//
// Threat model: the policy file may be written by the agent it governs, so
// everything here takes hostile input: nothing panics, and nothing beyond
// the file's own text (names, lines, keys) goes into an error.
package tomlfile

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
)

// Error is one problem in a TOML file. Its message reads like a compiler's,
// "policy.toml:12: rule[2].to: unknown state \"PURPLE\" (want GREEN, YELLOW,
// ORANGE or RED)". Indexes in Key count from 1, as a person counts the
// [[rule]] tables in a file.
type Error struct {
	File string // the file name as given
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

// Errors is every problem found in one file, in line order, so that a user
// fixes a file in one pass.
type Errors []*Error

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

// mismatch matches the decoder's type errors, which are plain errors that
// carry the line only in their text.
var mismatch = regexp.MustCompile(`^toml: line (\d+) \(last key "([^"]*)"\): (.*)$`)

// DecodeError turns err, from decoding data (the contents of filename) with
// BurntSushi/toml, into an Errors naming the file and, where there is one,
// the line and key.
func DecodeError(filename string, data []byte, err error) error {
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

// KeyLine returns the 1-based line on which the TOML key k (as reported by
// toml.MetaData.Undecoded) is defined in data, or the line of its nearest
// enclosing key, or 0.
func KeyLine(data []byte, k toml.Key) int {
	ix := NewIndex(data)
	return ix.Line(ix.Locate(k))
}
