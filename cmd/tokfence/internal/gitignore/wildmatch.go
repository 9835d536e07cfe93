package gitignore

import "strings"

// The results of dowild. The two aborts are git's: they cut the search
// short when no later position of the text can match either, which keeps
// a pattern of many stars polynomial instead of exponential.
const (
	wmMatch = iota
	wmNoMatch
	wmAbortAll        // no match here, nor for any later start of the text
	wmAbortToStarStar // no match before the next '/', but a '**' may go on
)

// wildmatch reports whether text matches the glob pattern p with git's
// wildmatch rules, which .gitignore patterns use: '*' and '?' match
// anything but '/' when pathname is set; '**' between slashes (or at an
// end) matches across them; '[...]' is a set, negated by '!' or '^', with
// ranges and [:class:] names; '\' quotes the next byte. Bytes are compared
// as they are, case-sensitively, as git does by default on Linux.
func wildmatch(p, text string, pathname bool) bool {
	return dowild(p, text, pathname) == wmMatch
}

// dowild is git's wildmatch.c dowild, line for line, on byte strings.
func dowild(p, text string, pathname bool) int {
	pi, ti := 0, 0
	for ; pi < len(p); pi, ti = pi+1, ti+1 {
		pc := p[pi]
		if ti >= len(text) && pc != '*' {
			return wmAbortAll
		}
		var tc byte
		if ti < len(text) {
			tc = text[ti]
		}
		switch pc {
		case '\\':
			// A literal match with the next byte; a trailing '\' matches nothing.
			if pi++; pi >= len(p) || tc != p[pi] {
				return wmNoMatch
			}
		default:
			if tc != pc {
				return wmNoMatch
			}
		case '?':
			if pathname && tc == '/' {
				return wmNoMatch
			}
		case '[':
			var ok bool
			if pi, ok = matchSet(p, pi, tc); pi < 0 {
				return wmAbortAll
			}
			if !ok || (pathname && tc == '/') {
				return wmNoMatch
			}
		case '*':
			r, next, nti := star(p, pi, text, ti, pathname)
			if r >= 0 {
				return r
			}
			// One '*' followed by '/' skipped to the text's next '/';
			// the loop's increment matches the two slashes.
			pi, ti = next, nti
		}
	}
	if ti < len(text) {
		return wmNoMatch
	}
	return wmMatch
}

// star matches the '*' or run of '*'s at p[pi] against text[ti:]. It
// returns a result, or -1 with the pattern and text positions at which
// dowild goes on (a lone '*' before a '/' is matched against the rest of
// a path segment).
func star(p string, pi int, text string, ti int, pathname bool) (result, pnext, tnext int) {
	matchSlash := !pathname
	if pi+1 < len(p) && p[pi+1] == '*' {
		prev := pi - 1
		for pi++; pi < len(p) && p[pi] == '*'; pi++ {
		}
		// pi is past the run of stars.
		if (prev < 0 || p[prev] == '/') &&
			(pi == len(p) || p[pi] == '/' || (p[pi] == '\\' && pi+1 < len(p) && p[pi+1] == '/')) {
			// "**/" may match no directory at all: foo/**/bar matches foo/bar.
			if pi < len(p) && p[pi] == '/' && dowild(p[pi+1:], text[ti:], pathname) == wmMatch {
				return wmMatch, 0, 0
			}
			matchSlash = true
		} else {
			matchSlash = false
		}
	} else {
		pi++
	}
	rest := text[ti:]
	if pi == len(p) {
		// A trailing "**" matches everything; a trailing '*' only what
		// has no more slashes.
		if !matchSlash && strings.IndexByte(rest, '/') >= 0 {
			return wmNoMatch, 0, 0
		}
		return wmMatch, 0, 0
	}
	if !matchSlash && p[pi] == '/' {
		i := strings.IndexByte(rest, '/')
		if i < 0 {
			return wmNoMatch, 0, 0
		}
		return -1, pi, ti + i
	}
	for ti < len(text) {
		if c := p[pi]; !isGlobSpecial(c) {
			// The text up to the next occurrence of the literal after the
			// star belongs to the star (never past a '/' it cannot match).
			for ti < len(text) && text[ti] != c && (matchSlash || text[ti] != '/') {
				ti++
			}
			if ti == len(text) {
				// Nor at any later start: what follows it is shorter.
				// (git returns a plain no-match here, which lets
				// "*a*a*a*a*a*a0" against a long run of a's take
				// exponential time; the abort changes no answer.)
				return wmAbortAll, 0, 0
			}
			if text[ti] != c {
				return wmAbortToStarStar, 0, 0 // stopped at a '/': only a '**' can go on
			}
		}
		m := dowild(p[pi:], text[ti:], pathname)
		if m != wmNoMatch {
			if !matchSlash || m != wmAbortToStarStar {
				return m, 0, 0
			}
		} else if !matchSlash && text[ti] == '/' {
			return wmAbortToStarStar, 0, 0
		}
		ti++
	}
	return wmAbortAll, 0, 0
}

func isGlobSpecial(c byte) bool { return c == '*' || c == '?' || c == '[' || c == '\\' }

// matchSet matches the byte tc against the set that opens at p[pi] ('[').
// It returns the index of the set's closing ']' and whether tc is in the
// set (negation applied), or -1 for a set that is never closed or names
// an unknown class, which git treats as the end of all matching.
func matchSet(p string, pi int, tc byte) (int, bool) {
	at := func(i int) byte { // p[i], or 0 past the end, as C reads its NUL
		if i < len(p) {
			return p[i]
		}
		return 0
	}
	pi++
	pc := at(pi)
	if pc == '^' {
		pc = '!'
	}
	negated := pc == '!'
	if negated {
		pi++
		pc = at(pi)
	}
	var prev byte
	matched := false
	for {
		if pc == 0 {
			return -1, false
		}
		switch {
		case pc == '\\':
			pi++
			if pc = at(pi); pc == 0 {
				return -1, false
			}
			if tc == pc {
				matched = true
			}
		case pc == '-' && prev != 0 && at(pi+1) != 0 && at(pi+1) != ']':
			pi++
			pc = at(pi)
			if pc == '\\' {
				pi++
				if pc = at(pi); pc == 0 {
					return -1, false
				}
			}
			if tc <= pc && tc >= prev {
				matched = true
			}
			pc = 0 // a range cannot start another range
		case pc == '[' && at(pi+1) == ':':
			s := pi + 2
			j := s
			for at(j) != 0 && at(j) != ']' {
				j++
			}
			if at(j) == 0 {
				return -1, false
			}
			if j-s-1 < 0 || p[j-1] != ':' {
				// No ":]": an ordinary '[' in the set.
				if tc == '[' {
					matched = true
				}
				pc = '['
				break
			}
			in, known := inClass(p[s:j-1], tc)
			if !known {
				return -1, false
			}
			if in {
				matched = true
			}
			pi, pc = j, 0
		default:
			if tc == pc {
				matched = true
			}
		}
		prev = pc
		pi++
		if pc = at(pi); pc == ']' {
			return pi, matched != negated
		}
	}
}

// inClass reports whether c is in the POSIX class name, in git's ASCII
// ctype, and whether the name is a class at all.
func inClass(name string, c byte) (in, known bool) {
	upper, lower, digit := c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c >= '0' && c <= '9'
	switch name {
	case "alnum":
		return upper || lower || digit, true
	case "alpha":
		return upper || lower, true
	case "blank":
		return c == ' ' || c == '\t', true
	case "cntrl":
		return c < 0x20 || c == 0x7f, true
	case "digit":
		return digit, true
	case "graph":
		return c > 0x20 && c < 0x7f, true
	case "lower":
		return lower, true
	case "print":
		return c >= 0x20 && c < 0x7f, true
	case "punct":
		return c > 0x20 && c < 0x7f && !upper && !lower && !digit, true
	case "space":
		return c == ' ' || c == '\t' || c == '\n' || c == '\r', true
	case "upper":
		return upper, true
	case "xdigit":
		return digit || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'), true
	}
	return false, false
}
