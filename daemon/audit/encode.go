package audit

import (
	"errors"
	"math"
	"slices"
	"strconv"
	"unicode/utf8"
)

// appendJSON appends r as a JSON object, byte for byte what json.Marshal
// gives for it (field order, omitempty, sorted Detail keys, HTML-safe string
// escaping, float and time formats): FuzzRecordJSON holds it to that.
//
// It is written out by hand because it runs twice per proxied request, on
// the request's goroutine: reflection-driven encoding cost several times the
// CPU, and its deep recursion grew every request goroutine's stack from
// 8 KiB to 16 KiB for as long as its connection stays open.
func (r *Record) appendJSON(b []byte) ([]byte, error) {
	b = append(b, `{"seq":`...)
	b = strconv.AppendUint(b, r.Seq, 10)
	b = append(b, `,"time":`...)
	b, err := r.Time.AppendText(append(b, '"')) // RFC 3339, as Time.MarshalJSON
	if err != nil {
		return b, err
	}
	b = append(b, '"')
	b = appendField(b, "prev", r.Prev, false)
	b = appendField(b, "event", r.Event, false)
	b = appendField(b, "session", r.Session, true)
	b = appendField(b, "agent", r.Agent, true)
	b = appendField(b, "jti", r.JTI, true)
	if r.PeerUID != nil {
		b = strconv.AppendInt(appendKey(b, "peer_uid"), int64(*r.PeerUID), 10)
	}
	b = appendInt(b, "peer_pid", int64(r.PeerPID))
	b = appendField(b, "peer_exe", r.PeerExe, true)
	b = appendField(b, "provider", r.Provider, true)
	b = appendField(b, "model", r.Model, true)
	b = appendField(b, "method", r.Method, true)
	b = appendField(b, "path", r.Path, true)
	b = appendInt(b, "status", int64(r.Status))
	if r.LatencyMS != 0 {
		if b, err = appendFloat(appendKey(b, "latency_ms"), r.LatencyMS); err != nil {
			return b, err
		}
	}
	b = appendInt(b, "bytes_in", r.BytesIn)
	b = appendInt(b, "bytes_out", r.BytesOut)
	if u := r.Usage; u != nil {
		b = append(appendKey(b, "usage"), '{')
		n := len(b)
		b = appendInt(b, "input_tokens", u.InputTokens)
		b = appendInt(b, "output_tokens", u.OutputTokens)
		b = appendInt(b, "cached_tokens", u.CachedTokens)
		if u.Estimated {
			b = append(b, `,"estimated":true`...)
		}
		if len(b) > n {
			b = slices.Delete(b, n, n+1) // the first member's comma
		}
		b = append(b, '}')
	}
	b = appendField(b, "rule", r.Rule, true)
	b = appendField(b, "encoding", r.Encoding, true)
	b = appendField(b, "direction", r.Direction, true)
	b = appendField(b, "fingerprint", r.Fingerprint, true)
	b = appendField(b, "from", r.From, true)
	b = appendField(b, "to", r.To, true)
	b = appendField(b, "reason", r.Reason, true)
	b = appendField(b, "error", r.Error, true)
	if len(r.Detail) > 0 {
		keys := make([]string, 0, len(r.Detail))
		for k := range r.Detail {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		b = append(appendKey(b, "detail"), '{')
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, k)
			b = appendString(append(b, ':'), r.Detail[k])
		}
		b = append(b, '}')
	}
	return append(b, '}'), nil
}

// appendKey appends ,"name": for a member after the first. name is one of
// Record's JSON names, which need no escaping.
func appendKey(b []byte, name string) []byte {
	return append(append(append(b, `,"`...), name...), `":`...)
}

// appendField appends ,"name":"v", or nothing when omitEmpty and v is "".
func appendField(b []byte, name, v string, omitEmpty bool) []byte {
	if omitEmpty && v == "" {
		return b
	}
	return appendString(appendKey(b, name), v)
}

// appendInt appends ,"name":v unless v is 0 (every integer is omitempty).
func appendInt(b []byte, name string, v int64) []byte {
	if v == 0 {
		return b
	}
	return strconv.AppendInt(appendKey(b, name), v, 10)
}

// appendFloat formats f as encoding/json does: the shortest form that
// reads back exactly, in exponent form only for very small or very large
// magnitudes, with a one-digit negative exponent left unpadded.
func appendFloat(b []byte, f float64) ([]byte, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return b, errors.New("record holds a float that JSON cannot represent")
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// e-09 to e-9
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b, nil
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string, escaped as encoding/json does by
// default: quote, backslash and control bytes; <, > and & (so that a trail
// pasted into HTML stays inert); U+2028 and U+2029; and each byte of
// invalid UTF-8 replaced by U+FFFD.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		c, size := utf8.DecodeRuneInString(s[i:])
		if c == utf8.RuneError && size == 1 {
			b = append(append(b, s[start:i]...), `\ufffd`...)
			i += size
			start = i
			continue
		}
		if c == '\u2028' || c == '\u2029' {
			b = append(append(b, s[start:i]...), '\\', 'u', '2', '0', '2', hexDigits[c&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	return append(append(b, s[start:]...), '"')
}
