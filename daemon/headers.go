package daemon

import (
	"bytes"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// credentialNames are header names, lowercased with '_' folded to '-', that
// carry credentials in some client or server. They are never forwarded.
var credentialNames = map[string]bool{
	"authorization":        true,
	"proxy-authorization":  true,
	"x-api-key":            true,
	"api-key":              true,
	"apikey":               true,
	"x-goog-api-key":       true,
	"anthropic-api-key":    true,
	"openai-api-key":       true,
	"cookie":               true,
	"set-cookie":           true,
	"x-auth-token":         true,
	"x-amz-security-token": true,
}

// normHeader lowercases name and folds '_' to '-': some servers (and CGI
// bridges) treat X_Api_Key as X-Api-Key, so both spellings must be caught.
// It allocates only when name is not already in that form.
func normHeader(name string) string {
	for i := 0; i < len(name); i++ {
		if c := name[i]; c == '_' || ('A' <= c && c <= 'Z') {
			return strings.ReplaceAll(strings.ToLower(name), "_", "-")
		}
	}
	return name
}

// appendNormHeader appends normHeader(name) to dst. With a stack buffer
// it costs no allocation, which matters: every header of every request and
// reply goes through it. Names are ASCII tokens (net/http refuses others);
// anything else takes normHeader's Unicode-aware path.
func appendNormHeader(dst []byte, name string) []byte {
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 0x80:
			return append(dst[:len(dst)-i], normHeader(name)...)
		case c == '_':
			c = '-'
		case 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return dst
}

// hasSuffix is strings.HasSuffix for a byte slice and a string, without a
// conversion.
func hasSuffix(b []byte, suf string) bool {
	return len(b) >= len(suf) && string(b[len(b)-len(suf):]) == suf
}

// isCredentialHeader reports whether a header of this name could carry a
// credential: a known name, or a name ending in a credential word. Names
// that merely contain such a word elsewhere (X-Custom-Token-Count) are not
// credentials by name; their values are still scanned.
func isCredentialHeader(name string) bool {
	var buf [64]byte
	return isCredentialKey(appendNormHeader(buf[:0], name))
}

// isCredentialKey is isCredentialHeader for a name in normHeader form.
func isCredentialKey(n []byte) bool {
	if credentialNames[string(n)] {
		return true
	}
	for _, suf := range credentialSuffixes {
		if hasSuffix(n, suf) {
			return true
		}
	}
	return false
}

var credentialSuffixes = []string{"api-key", "apikey", "-key", "-token", "-secret", "-password", "-auth",
	"-authorization", "-cookie", "-credential", "-credentials", "-session"}

// tokenHeaderNames are where SDKs put the API key, and so where an agent's
// capability token arrives: Authorization (Bearer) on every route, and the
// provider-specific key headers; in normHeader form.
var tokenHeaderNames = map[string]bool{"authorization": true, "x-api-key": true, "x-goog-api-key": true, "api-key": true}

// errNoToken is the 401 for a request without a capability token: strict
// mode never grants implicitly.
var errNoToken = errors.New("no capability token: send the token from `tokfence grant` as the API key (Authorization: Bearer, x-api-key, x-goog-api-key or api-key)")

// extractToken returns the one capability token a request carries. The
// same token may appear in several token headers (some SDKs send two), but
// two different values, or a header repeated, is refused as ambiguous.
func extractToken(h http.Header) (string, error) {
	var token string
	var buf [64]byte
	for name, vals := range h {
		canon := appendNormHeader(buf[:0], name)
		if !tokenHeaderNames[string(canon)] {
			continue
		}
		if len(vals) != 1 {
			return "", errors.New("credential header repeated; send the token once")
		}
		v := strings.TrimSpace(vals[0])
		if string(canon) == "authorization" {
			scheme, rest, ok := strings.Cut(v, " ")
			if !ok || !strings.EqualFold(scheme, "Bearer") {
				return "", errors.New("authorization header must be `Bearer TOKEN`")
			}
			v = strings.TrimSpace(rest)
		}
		if v == "" {
			continue
		}
		if token != "" && token != v {
			return "", errors.New("two different credentials in one request")
		}
		token = v
	}
	if token == "" {
		return "", errNoToken
	}
	return token, nil
}

// baseForwardHeaders go upstream for every provider: content negotiation,
// and the headers agents send to correlate requests (Codex's originator,
// session_id and thread_id; conversation_id), in either spelling.
var baseForwardHeaders = map[string]bool{
	"accept": true, "accept-language": true, "content-type": true, "user-agent": true,
	"idempotency-key": true, "cache-control": true,
	"originator": true, "session-id": true, "thread-id": true, "conversation-id": true,
}

// forwardHeaders builds the upstream request's headers from an allow-list:
// the base set, the provider's own headers, and custom X- headers. A header
// whose name is a credential, a forwarding header, or whose value contains
// the capability token is dropped. Values are copied byte for byte.
func forwardHeaders(in http.Header, p *Provider, token string) http.Header {
	out := make(http.Header, len(in))
	var buf [64]byte
	nominated := connectionNames(in["Connection"])
	for name, vals := range in {
		nb := appendNormHeader(buf[:0], name)
		// Our own headers are for the daemon, and a header the client
		// named in Connection is hop-by-hop (RFC 9110 7.6.1), listed or not.
		if bytes.HasPrefix(nb, []byte("x-tokfence-")) || slices.Contains(nominated, string(nb)) {
			continue
		}
		listed := baseForwardHeaders[string(nb)] || p.listsHeader(nb)
		if !listed && (isCredentialKey(nb) || string(nb) == "forwarded" || bytes.HasPrefix(nb, []byte("x-forwarded-")) || string(nb) == "x-real-ip") {
			continue
		}
		if !listed && !bytes.HasPrefix(nb, []byte("x-")) {
			continue
		}
		if !listed && strings.Contains(name, "_") {
			// X_Foo is ambiguous with X-Foo upstream. A listed name is
			// one we chose to send (Codex spells session_id so), and
			// none of them is a credential in either spelling.
			continue
		}
		carries := false
		for _, v := range vals {
			if token != "" && strings.Contains(v, token) {
				carries = true
			}
		}
		if !carries {
			out[name] = append([]string(nil), vals...)
		}
	}
	return out
}

// connectionNames returns the header names (in normHeader form) that the
// Connection header values vals nominate; nil, without allocating, for
// the common "keep-alive" or none.
func connectionNames(vals []string) []string {
	var out []string
	for _, v := range vals {
		for opt := range strings.SplitSeq(v, ",") {
			opt = strings.TrimSpace(opt)
			if opt != "" && !strings.EqualFold(opt, "keep-alive") && !strings.EqualFold(opt, "close") {
				out = append(out, normHeader(opt))
			}
		}
	}
	return out
}

// credentialParams are query parameter names, in normHeader form, that
// carry credentials in some API (Gemini's key, OAuth's access_token).
var credentialParams = map[string]bool{"key": true, "token": true, "auth": true, "password": true, "secret": true,
	"access-token": true, "id-token": true, "refresh-token": true, "sig": true, "signature": true}

// forwardQuery is the query string that goes upstream: q without any
// parameter named like a credential, and without any parameter whose
// value carries the capability token. The real key never travels in it:
// the daemon sends it in the provider's auth header only.
func forwardQuery(q url.Values, token string) url.Values {
	var buf [64]byte
	for name, vals := range q {
		n := appendNormHeader(buf[:0], name)
		drop := credentialParams[string(n)] || isCredentialKey(n)
		for _, v := range vals {
			if token != "" && strings.Contains(v, token) {
				drop = true
			}
		}
		if drop {
			q.Del(name)
		}
	}
	return q
}

// listsHeader reports whether the provider forwards the header whose
// normHeader form is n. Providers list a handful, so a scan is enough.
func (p *Provider) listsHeader(n []byte) bool {
	for _, h := range p.Headers {
		if h == string(n) {
			return true
		}
	}
	return false
}
