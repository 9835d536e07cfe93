package daemon

import (
	"bytes"
	"encoding/json"
	"errors"
)

// Errors of bodyModel. Each means the daemon cannot tell which model the
// upstream will run, so a grant that limits models cannot be enforced.
var (
	errBodyInvalid   = errors.New("request body starts as a JSON object but is not valid JSON")
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
	i := skipSpace(body, 0)
	if i == len(body) || body[i] != '{' {
		return "", nil
	}
	model, seen := "", false
	err := members(body, func(key, val []byte) error {
		if !isKey(key, "model") {
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
		if model, err = unquote(val); err != nil {
			return errBodyInvalid
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	return model, nil
}

// members calls fn with each top-level member of the JSON object doc, in
// order: the key as its quoted JSON string and the value's raw bytes.
// Nested values are skipped, not decoded. It returns errBodyInvalid if doc
// is not a valid JSON object, and stops at fn's first error.
func members(doc []byte, fn func(key, val []byte) error) error {
	i := skipSpace(doc, 0)
	if i == len(doc) || doc[i] != '{' || !json.Valid(doc) {
		return errBodyInvalid
	}
	return eachMember(doc[i:], fn)
}

// eachMember is members for an object obj already known to be valid JSON
// (a value inside a document members has checked); obj starts at its '{'.
func eachMember(obj []byte, fn func(key, val []byte) error) error {
	doc := obj
	i := skipSpace(doc, 1)
	for i < len(doc) && doc[i] == '"' {
		end := skipString(doc, i)
		key := doc[i:end]
		i = skipSpace(doc, end)
		i = skipSpace(doc, i+1) // the colon
		vend := skipValue(doc, i)
		if err := fn(key, doc[i:vend]); err != nil {
			return err
		}
		i = skipSpace(doc, vend)
		if i < len(doc) && doc[i] == ',' {
			i = skipSpace(doc, i+1)
		}
	}
	return nil
}

// isKey reports whether the quoted JSON string raw is name, an ASCII key.
func isKey(raw []byte, name string) bool { return string(keyText(raw)) == name }

// keyText returns what the quoted JSON string raw spells, for comparing
// with ASCII key names: the bytes between the quotes, or, when it has an
// escape, its decoding (nil if that fails). Only escaped keys allocate.
func keyText(raw []byte) []byte {
	text := raw[1 : len(raw)-1]
	if bytes.IndexByte(text, '\\') < 0 {
		return text
	}
	s, err := unquote(raw)
	if err != nil {
		return nil
	}
	return []byte(s)
}

// unquote decodes the quoted JSON string raw, as encoding/json does (bad
// UTF-8 becomes U+FFFD).
func unquote(raw []byte) (string, error) {
	for _, c := range raw[1 : len(raw)-1] {
		if c == '\\' || c >= 0x80 {
			var s string
			err := json.Unmarshal(raw, &s)
			return s, err
		}
	}
	return string(raw[1 : len(raw)-1]), nil
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index just past the string that starts at b[i].
// b is valid JSON.
func skipString(b []byte, i int) int {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return i
}

// skipValue returns the index just past the value that starts at b[i].
// b is valid JSON.
func skipValue(b []byte, i int) int {
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for i < len(b) {
			switch b[i] {
			case '"':
				i = skipString(b, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return i
	}
	for i < len(b) && b[i] != ',' && b[i] != '}' && b[i] != ']' && b[i] != ' ' && b[i] != '\t' && b[i] != '\n' && b[i] != '\r' {
		i++
	}
	return i
}
