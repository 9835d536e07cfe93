package daemon

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
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
)

// APIError is the one error shape on the wire:
// {"error": {"message": ..., "type": ..., "code": ...}}.
type APIError struct {
	Status  int    `json:"-"`
	Message string `json:"message"`
	Type    string `json:"type"`
	Code    string `json:"code,omitempty"`
	Hint    string `json:"hint,omitempty"`
}

func (e *APIError) Error() string {
	return fmt.Sprintf("daemon answered %d %s: %s", e.Status, e.Type, e.Message)
}

type errorBody struct {
	Error *APIError `json:"error"`
}

// writeError writes the error shape. It is the only function that does, so
// the shape cannot drift between handlers.
func writeError(w http.ResponseWriter, status int, typ, msg string) {
	writeAPIError(w, &APIError{Status: status, Type: typ, Message: msg})
}

func writeAPIError(w http.ResponseWriter, e *APIError) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(e.Status)
	_ = json.NewEncoder(w).Encode(errorBody{Error: e})
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
