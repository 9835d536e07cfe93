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
// It walks the body once, validating it and noting its top-level members
// as it goes (jsonscan.Members); nested values are skipped, not decoded.
func bodyModel(body []byte) (string, error) {
	f, err := readFields(body)
	return f.model, err
}

// bodyFields is what the daemon reads of a JSON object body's top level,
// in the one walk that finds its model: the model, and the raw values of
// stream and stream_options (slices of the body; nil where absent) for
// requestUsage. scanned is false for a body that is not a JSON object.
type bodyFields struct {
	model          string
	stream, opts   []byte
	streamKeyTwice bool // stream or stream_options named twice
	scanned        bool
}

// readFields reads body's top-level fields (see bodyModel and bodyFields).
func readFields(body []byte) (bodyFields, error) {
	var f bodyFields
	i := jsonscan.SkipSpace(body, 0)
	if i == len(body) || body[i] != '{' {
		return f, nil
	}
	seen := false
	err := jsonscan.Members(body, func(key, val []byte) error {
		switch {
		case jsonscan.IsKey(key, "stream"):
			f.streamKeyTwice = f.streamKeyTwice || f.stream != nil
			f.stream = val
			return nil
		case jsonscan.IsKey(key, "stream_options"):
			f.streamKeyTwice = f.streamKeyTwice || f.opts != nil
			f.opts = val
			return nil
		case !jsonscan.IsKey(key, "model"):
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
		if f.model, err = jsonscan.Unquote(val); err != nil {
			return errBodyInvalid
		}
		return nil
	})
	if err != nil {
		return bodyFields{}, err
	}
	f.scanned = true
	return f, nil
}
