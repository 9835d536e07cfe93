package daemon

import (
	"errors"
	"testing"
)

func TestCheckRequestURI(t *testing.T) {
	tests := []struct {
		name, uri string
		ok        bool
	}{
		{"a plain path passes", "/openai/v1/chat/completions", true},
		{"a query is not part of the path", "/openai/v1/models?x=../..;%2f", true},
		{"an encoded colon passes", "/gemini/v1beta/models/gemini-pro%3AgenerateContent", true},
		{"encoded non-ASCII passes", "/openai/v1/files/%C3%BC", true},
		{"absolute-form is refused", "http://evil/x", false},
		{"asterisk-form is refused", "*", false},
		{"a dot segment is refused", "/openai/v1/../x", false},
		{"an encoded dot segment is refused", "/openai/v1/%2e%2e/x", false},
		{"an encoded slash is refused though it decodes clean", "/openai/v1/a%2fb", false},
		{"a path parameter is refused", "/openai/v1/..;/x", false},
		{"a fragment is refused", "/openai/v1/x#y", false},
		{"a double encoding is refused", "/openai/v1/%252f", false},
		{"an encoded newline is refused once decoded", "/openai/v1/chat%0a", false},
		{"an encoded space is refused once decoded", "/openai/v1/a%20b", false},
		{"an encoded question mark is refused once decoded", "/openai/v1/x%3fy", false},
		{"an encoded fragment is refused once decoded", "/openai/v1/x%23y", false},
		{"a malformed encoding is refused", "/openai/v1/x%zz", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkRequestURI(tt.uri)
			if (err == nil) != tt.ok || (err != nil && !errors.Is(err, errBadPath)) {
				t.Fatalf("checkRequestURI(%q) = %v, want ok=%v", tt.uri, err, tt.ok)
			}
		})
	}
}

func TestProviderPathsMustBeClean(t *testing.T) {
	tests := []struct {
		name string
		pc   ProviderConfig
		ok   bool
	}{
		{"clean prefixes pass", ProviderConfig{Paths: []string{"/v1/", "/models"}, VersionPrefix: "/v1", WebSocketPaths: []string{"/v1/ws"}}, true},
		{"a relative prefix is refused", ProviderConfig{Paths: []string{"v1/"}}, false},
		{"a prefix with a dot segment is refused", ProviderConfig{Paths: []string{"/v1/../"}}, false},
		{"a prefix with an empty segment is refused", ProviderConfig{Paths: []string{"/v1//"}}, false},
		{"a prefix with a path parameter is refused", ProviderConfig{Paths: []string{"/v1;x/"}}, false},
		{"a version prefix with a dot segment is refused", ProviderConfig{Paths: []string{"/"}, VersionPrefix: "/v1/.."}, false},
		{"a websocket path with a backslash is refused", ProviderConfig{Paths: []string{"/v1/"}, WebSocketPaths: []string{"/v1/a\\b"}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.pc.AuthHeader = "Authorization"
			if _, err := resolveProvider("custom", tt.pc); (err == nil) != tt.ok {
				t.Fatalf("resolveProvider(%+v) = %v, want ok=%v", tt.pc, err, tt.ok)
			}
		})
	}
}
