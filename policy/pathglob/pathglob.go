// Package pathglob is Tokfence's one glob language and its one rule for
// what a clean request path is. A grant's model and endpoint globs, the
// policy file's read-only endpoints and sensor-rule globs are all checked by
// Check and matched by Match; the daemon's front door, the grant's scope
// check and the ORANGE read-only check all refuse paths with CheckPath.
//
// The language: '*' matches any run of bytes, '/' included (model ids such
// as "meta-llama/Llama-3*" hold slashes, and "POST /v1/chat/*" should cover
// nested paths). Every other byte matches itself. Nothing else is special:
// '?', '[', ']', '{', '}' and '\' are refused rather than read literally,
// because in other glob languages they mean something and a pattern
// carrying one is almost surely a mistake that would silently never match;
// "**" is refused for the same reason ('*' already crosses '/').
//
// Threat model: patterns come from the user (grants, the policy file) and
// are signed into tokens; paths come from a possibly hostile agent. A glob
// is only as good as the path it is matched against, so a path that some
// server on the way could read differently (dot segments, encoded
// separators, path parameters) is refused before any glob sees it, rather
// than matched. Match runs in O(len(pattern)·len(s)) with no recursion, so
// no input makes it slow.
package pathglob

import (
	"errors"
	"fmt"
	"strings"
)

// MaxLen bounds a pattern. The longest model id we know is about 60 bytes
// and the longest endpoint glob (Vertex AI's) about 75; the bound also keeps
// Match's cost per request small and a grant's globs inside a token.
const MaxLen = 128

// notSpecial are the bytes other glob languages treat as special, refused
// here so that no one writes "gpt-4o-?" or "/v1/[a-z]*" and gets a pattern
// that never matches.
const notSpecial = "[]?\\{}"

// Check reports why pattern is not a valid glob, or nil. A valid glob is 1
// to MaxLen bytes of printable ASCII other than space (every model id and
// API path is; a look-alike character pasted from a web page would make a
// glob that never matches), with none of ? [ ] { } \ and no "**".
func Check(pattern string) error {
	if pattern == "" || len(pattern) > MaxLen {
		return fmt.Errorf("glob of %d bytes: want 1 to %d", len(pattern), MaxLen)
	}
	for i := 0; i < len(pattern); i++ {
		c := pattern[i]
		if c <= ' ' || c >= 0x7f {
			return fmt.Errorf("glob %q: byte %#02x at offset %d is not printable ASCII (spaces and control characters are not allowed)", pattern, c, i)
		}
		if strings.IndexByte(notSpecial, c) >= 0 {
			return fmt.Errorf("glob %q: %q is not supported (only '*' is special)", pattern, c)
		}
	}
	if strings.Contains(pattern, "**") {
		return fmt.Errorf("glob %q: use a single '*' (it already matches across '/')", pattern)
	}
	return nil
}

// Match reports whether s matches pattern, where '*' matches any run of
// bytes (including '/') and every other byte matches itself. It does not
// check pattern; callers check it once, with Check, where it enters. It
// backtracks only to the last star, so it runs in O(len(pattern)·len(s))
// at worst.
func Match(pattern, s string) bool {
	p, i := 0, 0
	star, mark := -1, 0
	for i < len(s) {
		switch {
		case p < len(pattern) && pattern[p] == '*':
			star, mark = p, i
			p++
		case p < len(pattern) && pattern[p] == s[i]:
			p++
			i++
		case star >= 0:
			p = star + 1
			mark++
			i = mark
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

// ErrUnclean is wrapped by every error CheckPath returns.
var ErrUnclean = errors.New("not a clean absolute path")

// CheckPath reports why p is not a clean absolute request path, or nil.
// Errors wrap ErrUnclean and never quote p, which an agent wrote and which
// may carry a secret. A clean path is one every server on the way
// reads as the same sequence of segments, so that a glob matching it
// matches what the upstream serves:
//
//   - it starts with '/';
//   - no segment is empty ("//"; one trailing '/' is allowed) or a dot
//     segment ("." or "..");
//   - no byte is a control character, a space or DEL;
//   - no '\' (a separator on some servers), ';' (path parameters: Tomcat
//     and Spring read "/..;/" as "/../"), '?' or '#';
//   - no percent-encoded '/', '\', '.', ';', NUL or '%' (%2f %5c %2e %3b
//     %00 %25, in either case), which a server that decodes once more would
//     turn into one of the above.
//
// The rule is the same for a raw request target's path and for a decoded
// path; the daemon applies it to both.
func CheckPath(p string) error {
	if !strings.HasPrefix(p, "/") {
		return unclean("it does not start with '/'")
	}
	for i := 0; i < len(p); i++ {
		switch c := p[i]; {
		case c <= ' ' || c == 0x7f:
			return unclean("control character or space")
		case c == '\\' || c == ';' || c == '?' || c == '#':
			return unclean(fmt.Sprintf("%q is not allowed", c))
		case c == '%' && encodesSpecial(p[i+1:]):
			return unclean(fmt.Sprintf("encoded %q (a separator, dot, parameter, NUL or double encoding)", p[i:i+3]))
		}
	}
	if strings.Contains(p, "//") {
		return unclean("empty segment")
	}
	for seg := range strings.SplitSeq(p[1:], "/") {
		if seg == "." || seg == ".." {
			return unclean("dot segment")
		}
	}
	return nil
}

// encodesSpecial reports whether s, the text after a '%', starts with the
// hex code of a byte CheckPath refuses in encoded form.
func encodesSpecial(s string) bool {
	if len(s) < 2 {
		return false
	}
	switch strings.ToLower(s[:2]) {
	case "2f", "5c", "2e", "3b", "00", "25":
		return true
	}
	return false
}

func unclean(why string) error {
	return fmt.Errorf("%w: %s", ErrUnclean, why)
}
