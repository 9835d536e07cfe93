package daemon

import (
	"errors"

	"github.com/tokfence/tokfence/daemon/jsonscan"
)

// Errors of bodyModel. Each means the daemon cannot tell which model the
// upstream will run, so a grant that limits models cannot be enforced.
var (
	errBodyInvalid   = jsonscan.ErrInvalid
	errModelTwice    = errors.New(`request body names "model" more than once`)
	errModelNotValue = errors.New(`request body's "model" is not a string`)
)

// bodyModel returns the top-level "model" string of a JSON object body, as
// the upstream will read it: the key matched exactly after unescaping (so
// "mod\u0065l" counts and "Model" does not), and never two of them, since
// parsers disagree on which of two wins (and encoding/json even matches
// keys case-insensitively, which is why it is not used here). A body that
// is not a JSON object has no model ("", nil).
//
// It scans the body once to validate it and once more over its top level
// only; nested values are skipped, not decoded.
func bodyModel(body []byte) (string, error) {
	i := jsonscan.SkipSpace(body, 0)
	if i == len(body) || body[i] != '{' {
		return "", nil
	}
	model, seen := "", false
	err := jsonscan.Members(body, func(key, val []byte) error {
		if !jsonscan.IsKey(key, "model") {
			return nil
		}
		if seen {
			return errModelTwice
		}
		seen = true
		if val[0] != '"' {
			return errModelNotValue
		}
		var err error
		if model, err = jsonscan.Unquote(val); err != nil {
			return errBodyInvalid
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	return model, nil
}
