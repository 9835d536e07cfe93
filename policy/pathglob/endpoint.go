package pathglob

import (
	"fmt"
	"strings"
)

// Endpoint is one "METHOD GLOB" entry, as a grant's endpoints and the
// policy file's read_only list both write them: "POST /v1/chat/*",
// "GET */models", "* /v1/models".
type Endpoint struct {
	Method string // an upper-case HTTP method, or "*" for any
	Glob   string // a path glob that starts with '/' or '*'
}

// methods are the methods an endpoint may name. Upper case only, as on the
// wire, so "get" (or "GTE") is a typo reported rather than a silent miss;
// CONNECT and TRACE are absent because the daemon never forwards them.
var methods = map[string]bool{
	"*": true, "GET": true, "HEAD": true, "POST": true, "PUT": true,
	"PATCH": true, "DELETE": true, "OPTIONS": true,
}

// ParseEndpoint parses "METHOD GLOB": METHOD an upper-case HTTP method or
// "*", one space, then a glob (see Check) that starts with '/' or '*'. A
// glob starting with '*' is fine: it is matched only against clean paths,
// which start with '/', so "*/models" covers "/v1/models" and
// "/v1beta/models".
func ParseEndpoint(s string) (Endpoint, error) {
	method, glob, ok := strings.Cut(s, " ")
	if !ok || method == "" || glob == "" {
		return Endpoint{}, fmt.Errorf("bad endpoint %q (want \"METHOD /glob\", such as \"GET */models\")", s)
	}
	if !methods[method] {
		return Endpoint{}, fmt.Errorf("bad endpoint %q: unknown method %q (want an upper-case HTTP method such as GET, or '*' for any)", s, method)
	}
	if glob[0] != '/' && glob[0] != '*' {
		return Endpoint{}, fmt.Errorf("bad endpoint %q: glob %q must start with '/' or '*'", s, glob)
	}
	if err := Check(glob); err != nil {
		return Endpoint{}, fmt.Errorf("bad endpoint %q: %w", s, err)
	}
	return Endpoint{Method: method, Glob: glob}, nil
}

// Match reports whether a request for method on path is covered by e. The
// caller checks path with CheckPath first: Match compares bytes and knows
// nothing of dot segments.
func (e Endpoint) Match(method, path string) bool {
	return (e.Method == "*" || e.Method == method) && Match(e.Glob, path)
}

// String returns e as ParseEndpoint reads it.
func (e Endpoint) String() string { return e.Method + " " + e.Glob }
