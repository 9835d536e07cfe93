// Package gitignore decides which files of a directory tree git would
// leave out, so that `tokfence scan DIR` reads what a commit could hold
// and skips what .gitignore says is not the project's (build output,
// dependencies, logs).
//
// It follows git's rules (gitignore(5)): the patterns of a .gitignore
// apply to its directory and below, those of a deeper file override a
// shallower one's, and within a file the last matching pattern wins; a
// pattern without a slash matches a name at any depth, one with a slash
// (a leading one only anchors it) matches the path below the .gitignore's
// directory; a trailing '/' matches directories only; '!' re-includes;
// '#' starts a comment and '\' quotes; trailing spaces are dropped unless
// quoted; wildcards are git's wildmatch. The repository's
// .git/info/exclude applies too, beneath every .gitignore.
//
// What it leaves out: the user's global excludes (core.excludesFile), on
// purpose (a file ignored only there is walked: for a secret scanner
// reading too much is the safe side), and git's index, which it does not
// read: a file that a pattern ignores but that was committed all the same
// is skipped, where git would still track it.
//
// Invariants: matching is git's wildmatch, whose aborts keep any pattern
// polynomial; the tests hold the walk to `git ls-files --others
// --exclude-standard` and single paths to `git check-ignore`.
package gitignore

import (
	"bytes"
	"path"
	"strings"
)

// pattern is one line of an ignore file.
type pattern struct {
	glob     string // the wildmatch pattern: no '!', no trailing '/', no leading '/'
	negate   bool   // '!': re-include what matches
	dirOnly  bool   // a trailing '/': directories only
	basename bool   // no '/' in it: matched against the last path element
}

// List is the patterns of one ignore file, for the paths below base.
type List struct {
	base string // the file's directory relative to the walk's top: "" or "a/b/"
	pats []pattern
}

// Parse reads the ignore file data found in directory base (relative to
// the top of the tree, slash-separated, "" for the top itself).
func Parse(base string, data []byte) List {
	if base != "" && !strings.HasSuffix(base, "/") {
		base += "/"
	}
	l := List{base: base}
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSuffix(line, "\r")
		if line == "" || line[0] == '#' {
			continue
		}
		if p, ok := parseLine(trimTrailingSpaces(line)); ok {
			l.pats = append(l.pats, p)
		}
	}
	return l
}

func parseLine(s string) (pattern, bool) {
	var p pattern
	if strings.HasPrefix(s, "!") {
		p.negate, s = true, s[1:]
	}
	if strings.HasSuffix(s, "/") {
		p.dirOnly, s = true, s[:len(s)-1]
	}
	p.basename = !strings.Contains(s, "/")
	p.glob = strings.TrimPrefix(s, "/")
	return p, p.glob != ""
}

// trimTrailingSpaces drops the unquoted spaces at the end of s (git's
// trim_trailing_spaces: "foo\ " keeps its quoted space; tabs stay).
func trimTrailingSpaces(s string) string {
	lastSpace := -1
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case ' ':
			if lastSpace < 0 {
				lastSpace = i
			}
		case '\\':
			if i++; i == len(s) {
				return s
			}
			lastSpace = -1
		default:
			lastSpace = -1
		}
	}
	if lastSpace >= 0 {
		return s[:lastSpace]
	}
	return s
}

// match returns the last pattern of l that matches rel (a path relative
// to the top; isDir tells whether it is a directory), if any.
func (l List) match(rel string, isDir bool) (pattern, bool) {
	for i := len(l.pats) - 1; i >= 0; i-- {
		p := l.pats[i]
		if p.dirOnly && !isDir {
			continue
		}
		if p.basename {
			if wildmatch(p.glob, path.Base(rel), false) {
				return p, true
			}
			continue
		}
		below, ok := strings.CutPrefix(rel, l.base)
		if ok && below != "" && wildmatch(p.glob, below, true) {
			return p, true
		}
	}
	return pattern{}, false
}

// Matcher holds the lists that apply at one place of a walk, shallowest
// first: info/exclude, then the .gitignore of each directory from the top
// down.
type Matcher struct {
	lists []List
}

// Push adds the list of a directory one level deeper.
func (m *Matcher) Push(l List) { m.lists = append(m.lists, l) }

// Pop removes the deepest list.
func (m *Matcher) Pop() { m.lists = m.lists[:len(m.lists)-1] }

// Ignored reports whether rel (relative to the top, slash-separated) is
// ignored: the deepest list with a matching pattern decides.
func (m *Matcher) Ignored(rel string, isDir bool) bool {
	for i := len(m.lists) - 1; i >= 0; i-- {
		if p, ok := m.lists[i].match(rel, isDir); ok {
			return !p.negate
		}
	}
	return false
}
