package daemon

import (
	"errors"
	"strings"
)

// errBadPath is returned for request targets the proxy refuses outright.
var errBadPath = errors.New("bad request path")

// checkRequestURI vets the raw request target as it came off the wire,
// before anything decodes or cleans it. It refuses absolute URIs, encoded
// separators and dots (%2f, %5c, %2e), encoded NUL, any double encoding
// (%25), backslashes, ';' path parameters, control bytes, empty segments
// and dot segments: each
// is a way to make the path the scope check sees differ from the path the
// upstream serves.
func checkRequestURI(uri string) error {
	if !strings.HasPrefix(uri, "/") {
		return errors.Join(errBadPath, errors.New("absolute-form and asterisk request targets are refused"))
	}
	path, _, _ := strings.Cut(uri, "?")
	if strings.Contains(path, "#") {
		return errors.Join(errBadPath, errors.New("fragment in request target"))
	}
	lower := strings.ToLower(path)
	for _, bad := range []string{"%2f", "%5c", "%2e", "%00", "%25", "\\"} {
		if strings.Contains(lower, bad) {
			return errors.Join(errBadPath, errors.New("encoded separator, dot, NUL or double encoding in path"))
		}
	}
	// Path parameters: servers such as Tomcat and Spring read "..;" as
	// "..", so /v1/..;/admin is /admin upstream while every glob here sees
	// it under /v1/. No provider API has a ';' in its paths.
	if strings.Contains(lower, ";") || strings.Contains(lower, "%3b") {
		return errors.Join(errBadPath, errors.New("';' path parameter in path"))
	}
	for i := 0; i < len(path); i++ {
		if c := path[i]; c < 0x21 || c == 0x7f {
			return errors.Join(errBadPath, errors.New("control character in path"))
		}
	}
	if len(path) > 1 && strings.Contains(path[1:], "//") || strings.HasPrefix(path, "//") {
		return errors.Join(errBadPath, errors.New("empty path segment"))
	}
	for _, seg := range strings.Split(path, "/") {
		if seg == "." || seg == ".." {
			return errors.Join(errBadPath, errors.New("dot segment in path"))
		}
	}
	return nil
}
