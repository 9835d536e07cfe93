// Package jsonscan walks the top level of JSON objects without decoding
// them: each member's key (as its quoted string) and raw value, nested
// values skipped. It is what the proxy reads a request's model with and
// the meter a reply's usage. Keys are compared exactly after unescaping
// ("mod\u0065l" is "model", "Model" is not), unlike encoding/json's
// case-insensitive matching, so the daemon reads a body as the upstream
// will. Invariant: a document is validated once, in full, before any
// member is reported; nothing allocates but an escaped key or string.
package jsonscan

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
)

// ErrInvalid is returned for a document that starts as a JSON object but
// is not valid JSON.
var ErrInvalid = errors.New("request body starts as a JSON object but is not valid JSON")

// Members calls fn with each top-level member of the JSON object doc, in
// order: the key as its quoted JSON string and the value's raw bytes.
// Nested values are skipped, not decoded. It returns ErrInvalid if doc
// is not a valid JSON object, and stops at fn's first error.
func Members(doc []byte, fn func(key, val []byte) error) error {
	i := SkipSpace(doc, 0)
	var buf [16]member
	ms := buf[:0]
	if i == len(doc) || doc[i] != '{' || !validate(doc, &ms) {
		return ErrInvalid
	}
	// validate noted the members as it went: no second walk.
	for _, m := range ms {
		if err := fn(doc[m.k0:m.k1], doc[m.v0:m.v1]); err != nil {
			return err
		}
	}
	return nil
}

// EachMember is Members for an object obj already known to be valid JSON
// (a value inside a document Members has checked); obj starts at its '{'.
func EachMember(obj []byte, fn func(key, val []byte) error) error {
	doc := obj
	i := SkipSpace(doc, 1)
	for i < len(doc) && doc[i] == '"' {
		end := skipString(doc, i)
		key := doc[i:end]
		i = SkipSpace(doc, end)
		i = SkipSpace(doc, i+1) // the colon
		vend := skipValue(doc, i)
		if err := fn(key, doc[i:vend]); err != nil {
			return err
		}
		i = SkipSpace(doc, vend)
		if i < len(doc) && doc[i] == ',' {
			i = SkipSpace(doc, i+1)
		}
	}
	return nil
}

// IsKey reports whether the quoted JSON string raw is name, an ASCII key.
func IsKey(raw []byte, name string) bool { return string(KeyText(raw)) == name }

// KeyText returns what the quoted JSON string raw spells, for comparing
// with ASCII key names: the bytes between the quotes, or, when it has an
// escape, its decoding (nil if that fails). Only escaped keys allocate.
func KeyText(raw []byte) []byte {
	text := raw[1 : len(raw)-1]
	if bytes.IndexByte(text, '\\') < 0 {
		return text
	}
	s, err := Unquote(raw)
	if err != nil {
		return nil
	}
	return []byte(s)
}

// Unquote decodes the quoted JSON string raw, as encoding/json does (bad
// UTF-8 becomes U+FFFD).
func Unquote(raw []byte) (string, error) {
	for _, c := range raw[1 : len(raw)-1] {
		if c == '\\' || c >= 0x80 {
			var s string
			err := json.Unmarshal(raw, &s)
			return s, err
		}
	}
	return string(raw[1 : len(raw)-1]), nil
}

func SkipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index just past the string that starts at b[i].
// b is valid JSON.
func skipString(b []byte, i int) int {
	for i++; ; {
		// Eight bytes at a time to the next quote or backslash (a valid
		// string has no control character, stopIn's third stop).
		for i+8 <= len(b) {
			k := stopIn(binary.LittleEndian.Uint64(b[i:]))
			if i += k; k < 8 {
				break
			}
		}
		for i < len(b) && b[i] != '"' && b[i] != '\\' {
			i++
		}
		if i >= len(b) {
			return len(b)
		}
		if b[i] == '"' {
			return i + 1
		}
		i += 2 // an escape: its next byte is never the end
	}
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
