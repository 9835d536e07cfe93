package daemon

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/tokfence/tokfence/daemon/api"
)

// Error types on the wire. They follow the provider APIs' vocabulary so that
// SDKs surface them sensibly.
const (
	errAuth        = "authentication_error"
	errPermission  = "permission_error"
	errInvalid     = "invalid_request_error"
	errNotFound    = "not_found_error"
	errRateLimit   = "rate_limit_error"
	errTooLarge    = "request_too_large"
	errUpstream    = "upstream_error"
	errInternal    = "api_error"
	errUnavailable = "service_unavailable"
	// errNotConfigured is a 503 that waiting does not fix: the daemon
	// lacks the provider's key or base URL until the user adds it.
	errNotConfigured = "not_configured_error"
)

// Codes of the refusals an agent's code may want to tell apart, in the
// OpenAI shape's "code" member.
const (
	codeRateLimit    = "rate_limit_exceeded"
	codeRequestLimit = "request_limit_reached"
	codeBudget       = "budget_exhausted"
	codeUnpriced     = "model_unpriced"
)

// writeError writes the error shape. It is the only function that does, so
// the shape cannot drift between handlers.
func writeError(w http.ResponseWriter, status int, typ, msg string) {
	writeAPIError(w, &api.Error{Status: status, Type: typ, Message: msg})
}

func writeAPIError(w http.ResponseWriter, e *api.Error) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(e.Status)
	_ = json.NewEncoder(w).Encode(api.ErrorBody{Error: e})
}

// retryable reports whether waiting can fix a refusal of this status and
// type: a rate limit, an upstream that failed or went silent, a keychain
// or audit trail that is down for now. Everything else (a bad or foreign
// token, a scope, a used-up limit, a model with no price) fails the same
// way every time, and says so to the SDKs, which would otherwise retry
// any 429 or 5xx.
func retryable(status int, typ string) bool {
	switch status {
	case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusGatewayTimeout:
		return true
	case http.StatusServiceUnavailable:
		return typ != errNotConfigured
	}
	return false
}

// writeProviderError writes e on a provider route in the error shape of
// the API that provider speaks, so that its SDK parses the message (the
// OpenAI, Anthropic and Gemini SDKs each read only their own shape). It
// also says whether a retry can help: x-should-retry is what the OpenAI
// and Anthropic SDKs obey before their own status rules, and a 429 carries
// Retry-After (and retry-after-ms, which those SDKs prefer).
func writeProviderError(w http.ResponseWriter, shape string, e *api.Error) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Should-Retry", strconv.FormatBool(retryable(e.Status, e.Type)))
	if e.Status == http.StatusTooManyRequests && e.RetryAfter > 0 {
		h.Set("Retry-After", strconv.FormatInt(int64((e.RetryAfter+time.Second-1)/time.Second), 10))
		h.Set("Retry-After-Ms", strconv.FormatInt(e.RetryAfter.Milliseconds(), 10))
	}
	w.WriteHeader(e.Status)
	var body any
	switch shape {
	case apiAnthropic:
		body = anthropicError{Type: "error", Error: anthropicErrorInner{Type: anthropicType(e.Status, e.Type), Message: e.Message}}
	case apiGemini:
		body = geminiError{Error: geminiErrorInner{Code: e.Status, Message: e.Message, Status: grpcStatus(e.Status)}}
	default:
		body = api.ErrorBody{Error: e}
	}
	_ = json.NewEncoder(w).Encode(body)
}

// anthropicError is Anthropic's error shape:
// {"type":"error","error":{"type":...,"message":...}}.
type anthropicError struct {
	Type  string              `json:"type"`
	Error anthropicErrorInner `json:"error"`
}

type anthropicErrorInner struct {
	Type    string `json:"type"`
	Message string `json:"message"`
}

// anthropicType is the Anthropic error type of a refusal: ours where
// Anthropic has it, else the one Anthropic uses for the status.
func anthropicType(status int, typ string) string {
	switch typ {
	case errAuth, errPermission, errInvalid, errNotFound, errRateLimit, errTooLarge, errInternal:
		return typ
	}
	switch status {
	case http.StatusBadRequest:
		return errInvalid
	case http.StatusUnauthorized:
		return errAuth
	case http.StatusForbidden:
		return errPermission
	case http.StatusNotFound:
		return errNotFound
	case http.StatusRequestEntityTooLarge:
		return errTooLarge
	case http.StatusTooManyRequests:
		return errRateLimit
	case http.StatusServiceUnavailable:
		return "overloaded_error"
	}
	return errInternal
}

// geminiError is Google's error shape:
// {"error":{"code":403,"message":...,"status":"PERMISSION_DENIED"}}.
type geminiError struct {
	Error geminiErrorInner `json:"error"`
}

type geminiErrorInner struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Status  string `json:"status"`
}

// grpcStatus is the google.rpc status name Google's APIs pair with an
// HTTP status.
func grpcStatus(status int) string {
	switch status {
	case http.StatusBadRequest:
		return "INVALID_ARGUMENT"
	case http.StatusUnauthorized:
		return "UNAUTHENTICATED"
	case http.StatusForbidden:
		return "PERMISSION_DENIED"
	case http.StatusNotFound:
		return "NOT_FOUND"
	case http.StatusRequestEntityTooLarge:
		return "OUT_OF_RANGE"
	case http.StatusTooManyRequests:
		return "RESOURCE_EXHAUSTED"
	case 499:
		return "CANCELLED"
	case http.StatusServiceUnavailable, http.StatusBadGateway:
		return "UNAVAILABLE"
	case http.StatusGatewayTimeout:
		return "DEADLINE_EXCEEDED"
	}
	return "INTERNAL"
}

// writeJSON writes v as a 200 (or status) JSON reply.
func writeJSON(w http.ResponseWriter, status int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// ParseLogLevel parses "debug", "info", "warn" or "error".
func ParseLogLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(strings.ToLower(s))); err != nil {
		return 0, fmt.Errorf("config: log_level %q: want debug, info, warn or error", s)
	}
	return l, nil
}

// maxControlBody bounds a control-API request body: the largest is a grant
// with a few dozen globs.
const maxControlBody = 64 << 10

// decodeJSON decodes the request body into v, strictly (unknown fields are
// errors), and writes a 400 itself on failure.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxControlBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeError(w, http.StatusBadRequest, errInvalid, "bad request body: "+err.Error())
		return false
	}
	return true
}
