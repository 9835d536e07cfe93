package policy

import (
	"fmt"
	"strings"
)

// endpoint is one "METHOD /glob" entry of the ORANGE read-only list.
type endpoint struct {
	method string
	glob   string
}

// httpMethods are the methods an endpoint entry may name. Upper case only,
// as on the wire, so "get" is a typo we report rather than a silent miss.
var httpMethods = map[string]bool{
	"GET": true, "HEAD": true, "POST": true, "PUT": true,
	"PATCH": true, "DELETE": true, "OPTIONS": true,
}

// parseEndpoint parses "METHOD /glob". In a glob, '*' matches any run of
// bytes including '/', so "*/models" covers "/v1/models" and
// "/v1beta/models"; every other byte is literal. Bracket classes, '?' and
// escapes are refused rather than half-supported.
func parseEndpoint(s string) (endpoint, error) {
	method, glob, ok := strings.Cut(s, " ")
	if !ok || method == "" || glob == "" {
		return endpoint{}, fmt.Errorf("bad endpoint %q (want \"METHOD /glob\", such as \"GET */models\")", s)
	}
	if !httpMethods[method] {
		return endpoint{}, fmt.Errorf("bad endpoint %q: unknown method %q (want an upper-case HTTP method such as GET)", s, method)
	}
	if err := checkGlob(glob); err != nil {
		return endpoint{}, fmt.Errorf("bad endpoint %q: %w", s, err)
	}
	return endpoint{method: method, glob: glob}, nil
}

// checkGlob reports why glob is not a usable path glob, or nil.
func checkGlob(glob string) error {
	if glob[0] != '/' && glob[0] != '*' {
		return fmt.Errorf("glob %q must start with '/' or '*'", glob)
	}
	if i := strings.IndexAny(glob, "[]?\\ \t{}"); i >= 0 {
		return fmt.Errorf("glob %q: %q is not supported (only '*' is special)", glob, glob[i])
	}
	if strings.Contains(glob, "**") {
		return fmt.Errorf("glob %q: use a single '*' (it already matches across '/')", glob)
	}
	return nil
}

// globMatch reports whether s matches glob, where '*' matches any run of
// bytes. It runs in O(len(glob)·len(s)) at worst, with no recursion.
func globMatch(glob, s string) bool {
	gi, si := 0, 0
	star, mark := -1, 0
	for si < len(s) {
		switch {
		case gi < len(glob) && glob[gi] == '*':
			star, mark = gi, si
			gi++
		case gi < len(glob) && glob[gi] == s[si]:
			gi++
			si++
		case star >= 0:
			gi = star + 1
			mark++
			si = mark
		default:
			return false
		}
	}
	for gi < len(glob) && glob[gi] == '*' {
		gi++
	}
	return gi == len(glob)
}

// suspiciousPath reports whether p could mean something other than it
// appears to: dot segments, encoded separators or dots, or backslashes. An
// ORANGE session gets nothing on such a path, whatever the globs say, so a
// glob like "*/models" cannot be stretched over "/v1/files/../models".
func suspiciousPath(p string) bool {
	if !strings.HasPrefix(p, "/") || strings.ContainsAny(p, "\\?#") {
		return true
	}
	lower := strings.ToLower(p)
	for _, bad := range []string{"%2f", "%2e", "%5c", "%00", "//"} {
		if strings.Contains(lower, bad) {
			return true
		}
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == "." || seg == ".." {
			return true
		}
	}
	return false
}

func (e endpoint) matches(method, path string) bool {
	return e.method == method && globMatch(e.glob, path)
}

func (e endpoint) String() string { return e.method + " " + e.glob }
