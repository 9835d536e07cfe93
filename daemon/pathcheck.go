package daemon

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/tokfence/tokfence/policy/pathglob"
)

// errBadPath is returned for request targets the proxy refuses outright.
var errBadPath = errors.New("bad request path")

// checkRequestURI vets the raw request target as it came off the wire,
// before anything decodes or cleans it. It refuses absolute-form and
// asterisk targets; then the path (up to any '?') must be clean under
// pathglob.CheckPath both as sent and once decoded: no dot or empty
// segments, backslashes, ';' path parameters, fragments or control bytes,
// and no encoded separators, dots, NUL or double encoding. Each is a way to
// make the path the scope check sees differ from the path the upstream
// serves. Checking the decoding too means the path every later check sees
// is clean by construction, so a stray %0a is a 400 here, not a scope
// violation later.
func checkRequestURI(uri string) error {
	if !strings.HasPrefix(uri, "/") {
		return errors.Join(errBadPath, errors.New("absolute-form and asterisk request targets are refused"))
	}
	raw, _, _ := strings.Cut(uri, "?")
	if err := pathglob.CheckPath(raw); err != nil {
		return errors.Join(errBadPath, err)
	}
	dec, err := url.PathUnescape(raw)
	if err != nil {
		return errors.Join(errBadPath, errors.New("malformed percent-encoding in path"))
	}
	if err := pathglob.CheckPath(dec); err != nil {
		return errors.Join(errBadPath, fmt.Errorf("once decoded: %w", err))
	}
	return nil
}
