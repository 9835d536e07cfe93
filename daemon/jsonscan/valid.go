package jsonscan

import (
	"encoding/binary"
	"math/bits"
)

// maxDepth is encoding/json's nesting limit: past it json.Valid is false.
const maxDepth = 10000

// Valid reports whether doc is one JSON value with only white space around
// it, exactly as encoding/json.Valid does (FuzzValid holds the two
// together), but several times faster on the long strings agents send:
// a string's plain bytes are passed over eight at a time.
func Valid(doc []byte) bool { return validate(doc, nil) }

// member is a top-level member of an object: its quoted key doc[k0:k1]
// and raw value doc[v0:v1].
type member struct{ k0, k1, v0, v1 int }

// validate is Valid, and for a document that is an object it also appends
// its top-level members to *ms (if ms is not nil) as it goes, so that
// Members need not walk the document a second time.
func validate(doc []byte, ms *[]member) bool {
	var stack []byte // '{' or '[' per open container
	var m member     // the top-level member being read
	// key reads the key at i in an object at depth d, noting its span at
	// the top level.
	key := func(i, d int) int {
		k1, next := objectKey(doc, i)
		if d == 1 {
			m = member{k0: i, k1: k1, v0: next}
		}
		return next
	}
	// ended notes that the value before i ended with the stack at depth d.
	ended := func(i, d int) {
		if d == 1 && ms != nil && stack[0] == '{' {
			m.v1 = i
			*ms = append(*ms, m)
		}
	}
	i := SkipSpace(doc, 0)
	for {
		// A value starts at i.
		if i >= len(doc) {
			return false
		}
		switch c := doc[i]; {
		case c == '{' || c == '[':
			if len(stack) >= maxDepth {
				return false
			}
			stack = append(stack, c)
			i = SkipSpace(doc, i+1)
			if i < len(doc) && (c == '{' && doc[i] == '}' || c == '[' && doc[i] == ']') {
				stack = stack[:len(stack)-1]
				i++
				break
			}
			if c == '{' {
				if i = key(i, len(stack)); i < 0 {
					return false
				}
			}
			continue
		case c == '"':
			if i = validString(doc, i); i < 0 {
				return false
			}
		case c == '-' || c >= '0' && c <= '9':
			if i = validNumber(doc, i); i < 0 {
				return false
			}
		case c == 't':
			if i = literal(doc, i, "true"); i < 0 {
				return false
			}
		case c == 'f':
			if i = literal(doc, i, "false"); i < 0 {
				return false
			}
		case c == 'n':
			if i = literal(doc, i, "null"); i < 0 {
				return false
			}
		default:
			return false
		}
		ended(i, len(stack))
		// A value ended at i: close containers, or go on to the next value.
		for {
			i = SkipSpace(doc, i)
			if len(stack) == 0 {
				return i == len(doc)
			}
			if i >= len(doc) {
				return false
			}
			top, c := stack[len(stack)-1], doc[i]
			if c == ',' {
				i = SkipSpace(doc, i+1)
				if top == '{' {
					if i = key(i, len(stack)); i < 0 {
						return false
					}
				}
				break
			}
			if top == '{' && c == '}' || top == '[' && c == ']' {
				stack = stack[:len(stack)-1]
				i++
				ended(i, len(stack))
				continue
			}
			return false
		}
	}
}

// objectKey reads `"key" :` at i and returns the index just past the key
// and the one after the colon and its white space, or -1, -1.
func objectKey(doc []byte, i int) (int, int) {
	if i >= len(doc) || doc[i] != '"' {
		return -1, -1
	}
	if i = validString(doc, i); i < 0 {
		return -1, -1
	}
	k1 := i
	i = SkipSpace(doc, i)
	if i >= len(doc) || doc[i] != ':' {
		return -1, -1
	}
	return k1, SkipSpace(doc, i+1)
}

// strStop marks the bytes a string's fast pass stops at: the quote, the
// backslash and the control characters JSON forbids in a string.
var strStop = func() (t [256]bool) {
	for c := range 0x20 {
		t[c] = true
	}
	t['"'], t['\\'] = true, true
	return t
}()

const (
	lo7 = 0x0101010101010101
	hi7 = 0x8080808080808080
)

// stopIn returns the index in the word w (8 bytes, little-endian) of its
// first byte that is '"', '\\' or below 0x20, or 8 if none is.
func stopIn(w uint64) int {
	// A byte b is below 0x20 iff b-0x20 borrows, for b < 0x80; a byte
	// is c iff b^c is zero. Bytes at or above 0x80 are never stops and
	// are masked out of the first test.
	below := (w - 0x20*lo7) &^ w & hi7
	quote := w ^ ('"' * lo7)
	quote = (quote - lo7) &^ quote & hi7
	slash := w ^ ('\\' * lo7)
	slash = (slash - lo7) &^ slash & hi7
	m := below | quote | slash
	if m == 0 {
		return 8
	}
	// The borrow trick can mark a byte after a true stop, never before
	// one: the lowest mark is exact.
	return bits.TrailingZeros64(m) / 8
}

// validString checks the string that starts at doc[i] (a quote) and
// returns the index just past it, or -1.
func validString(doc []byte, i int) int {
	i++
	for {
		for i+8 <= len(doc) {
			k := stopIn(binary.LittleEndian.Uint64(doc[i:]))
			i += k
			if k < 8 {
				break
			}
		}
		for i < len(doc) && !strStop[doc[i]] {
			i++
		}
		if i >= len(doc) {
			return -1
		}
		switch c := doc[i]; {
		case c == '"':
			return i + 1
		case c < 0x20:
			return -1
		}
		// A backslash.
		if i+1 >= len(doc) {
			return -1
		}
		switch doc[i+1] {
		case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			i += 2
		case 'u':
			if i+6 > len(doc) {
				return -1
			}
			for _, h := range doc[i+2 : i+6] {
				if !isHex(h) {
					return -1
				}
			}
			i += 6
		default:
			return -1
		}
	}
}

func isHex(c byte) bool { return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' }

// validNumber checks the number that starts at doc[i] and returns the
// index just past it, or -1.
func validNumber(doc []byte, i int) int {
	if doc[i] == '-' {
		i++
	}
	switch {
	case i < len(doc) && doc[i] == '0':
		i++
	case i < len(doc) && doc[i] >= '1' && doc[i] <= '9':
		i = digits(doc, i+1)
	default:
		return -1
	}
	if i < len(doc) && doc[i] == '.' {
		j := digits(doc, i+1)
		if j == i+1 {
			return -1
		}
		i = j
	}
	if i < len(doc) && (doc[i] == 'e' || doc[i] == 'E') {
		i++
		if i < len(doc) && (doc[i] == '+' || doc[i] == '-') {
			i++
		}
		j := digits(doc, i)
		if j == i {
			return -1
		}
		i = j
	}
	return i
}

func digits(doc []byte, i int) int {
	for i < len(doc) && doc[i] >= '0' && doc[i] <= '9' {
		i++
	}
	return i
}

// literal checks that doc[i:] starts with lit and returns the index past
// it, or -1.
func literal(doc []byte, i int, lit string) int {
	if len(doc)-i < len(lit) || string(doc[i:i+len(lit)]) != lit {
		return -1
	}
	return i + len(lit)
}
