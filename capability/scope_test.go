package capability

import (
	"errors"
	"strings"
	"testing"

	"github.com/tokfence/tokfence/policy/pathglob"
)

func TestScopeAllow(t *testing.T) {
	s := Scope{
		Providers: []string{"openai", "anthropic"},
		Models:    []string{"gpt-4o*", "claude-*-sonnet", "meta-llama/*"},
		Endpoints: []string{"POST /v1/chat/*", "* /v1/models", "GET /v1/models/*"},
	}
	tests := []struct {
		name                          string
		provider, model, method, path string
		want                          error
	}{
		{"a chat call inside every glob is allowed", "openai", "gpt-4o-mini", "POST", "/v1/chat/completions", nil},
		{"a star in the middle matches", "anthropic", "claude-3-5-sonnet", "POST", "/v1/chat/x", nil},
		{"a star matches across slashes", "openai", "meta-llama/Llama-3/70b", "POST", "/v1/chat/a/b", nil},
		{"a request with no model passes the model check", "openai", "", "GET", "/v1/models", nil},
		{"a method star matches any method", "openai", "", "DELETE", "/v1/models", nil},
		{"another provider is refused", "mistral", "gpt-4o", "POST", "/v1/chat/completions", ErrScopeProvider},
		{"an empty provider is refused", "", "gpt-4o", "POST", "/v1/chat/completions", ErrScopeProvider},
		{"provider match is case-sensitive", "OpenAI", "gpt-4o", "POST", "/v1/chat/completions", ErrScopeProvider},
		{"a model outside the globs is refused", "openai", "gpt-3.5-turbo", "POST", "/v1/chat/completions", ErrScopeModel},
		{"a glob is anchored at the end", "anthropic", "claude-3-sonnet-extra", "POST", "/v1/chat/x", ErrScopeModel},
		{"a glob is anchored at the start", "openai", "xgpt-4o", "POST", "/v1/chat/x", ErrScopeModel},
		{"an endpoint outside the globs is refused", "openai", "gpt-4o", "POST", "/v1/files", ErrScopeEndpoint},
		{"the wrong method is refused", "openai", "gpt-4o", "GET", "/v1/chat/completions", ErrScopeEndpoint},
		{"a lower-case method is refused", "openai", "gpt-4o", "post", "/v1/chat/completions", ErrScopeEndpoint},
		{"a prefix of a glob is refused", "openai", "", "POST", "/v1/chat", ErrScopeEndpoint},
		{"dot-dot cannot escape a glob", "openai", "gpt-4o", "POST", "/v1/chat/../files", ErrScopeEndpoint},
		{"a dot segment is refused", "openai", "", "GET", "/v1/./models", ErrScopeEndpoint},
		{"a doubled slash is refused", "openai", "", "GET", "//v1/models", ErrScopeEndpoint},
		{"a backslash is refused", "openai", "", "POST", "/v1/chat/x\\..\\y", ErrScopeEndpoint},
		{"a relative path is refused", "openai", "", "GET", "v1/models", ErrScopeEndpoint},
		{"a path parameter is refused", "openai", "", "POST", "/v1/chat/x;y", ErrScopeEndpoint},
		{"a decoded encoded slash is refused", "openai", "", "POST", "/v1/chat/%2f", ErrScopeEndpoint},
		{"a control byte is refused", "openai", "", "POST", "/v1/chat/x\n", ErrScopeEndpoint},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := s.Allow(tt.provider, tt.model, tt.method, tt.path)
			if !errors.Is(err, tt.want) || (tt.want != nil && !errors.Is(err, ErrScope)) {
				t.Fatalf("Allow(%q, %q, %q, %q) = %v, want %v", tt.provider, tt.model, tt.method, tt.path, err, tt.want)
			}
		})
	}
}

func TestScopeAllowEmptyListsMeanAny(t *testing.T) {
	s := Scope{Providers: []string{"openai"}}
	if err := s.Allow("openai", "anything/at-all", "PATCH", "/x/y"); err != nil {
		t.Fatalf("Allow with empty models and endpoints = %v, want nil", err)
	}
	if err := s.Allow("openai", "m", "GET", "/../x"); !errors.Is(err, ErrScopeEndpoint) {
		t.Fatalf("Allow(dirty path) with no endpoint globs = %v, want %v", err, ErrScopeEndpoint)
	}
}

func TestScopeValidate(t *testing.T) {
	many := func(n int, s string) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = s
		}
		return out
	}
	tests := []struct {
		name  string
		scope Scope
		ok    bool
	}{
		{"a provider list alone is valid", Scope{Providers: []string{"openai"}}, true},
		{"a full scope is valid", testScope, true},
		{"no providers is invalid", Scope{Models: []string{"*"}}, false},
		{"an upper-case provider is invalid", Scope{Providers: []string{"OpenAI"}}, false},
		{"a provider star is invalid", Scope{Providers: []string{"*"}}, false},
		{"too many providers is invalid", Scope{Providers: many(maxProviders+1, "p")}, false},
		{"an empty model glob is invalid", Scope{Providers: []string{"p"}, Models: []string{""}}, false},
		{"a long model glob is invalid", Scope{Providers: []string{"p"}, Models: []string{strings.Repeat("m", pathglob.MaxLen+1)}}, false},
		{"a control byte in a glob is invalid", Scope{Providers: []string{"p"}, Models: []string{"a\nb"}}, false},
		{"too many model globs is invalid", Scope{Providers: []string{"p"}, Models: many(maxPatterns+1, "m")}, false},
		{"too many endpoints is invalid", Scope{Providers: []string{"p"}, Endpoints: many(maxPatterns+1, "GET *")}, false},
		{"a '?' in a model glob is invalid, as in the policy file", Scope{Providers: []string{"p"}, Models: []string{"gpt-4o-?"}}, false},
		{"a bracket class in a model glob is invalid", Scope{Providers: []string{"p"}, Models: []string{"gpt-[34]*"}}, false},
		{"a double star in a model glob is invalid", Scope{Providers: []string{"p"}, Models: []string{"gpt-**"}}, false},
		{"a space in a model glob is invalid", Scope{Providers: []string{"p"}, Models: []string{"gpt 4o"}}, false},
		{"a bracket class in an endpoint glob is invalid", Scope{Providers: []string{"p"}, Endpoints: []string{"GET /v1/[a-z]*"}}, false},
		{"an endpoint without a method is invalid", Scope{Providers: []string{"p"}, Endpoints: []string{"/v1/x"}}, false},
		{"a lower-case method is invalid", Scope{Providers: []string{"p"}, Endpoints: []string{"post /v1/x"}}, false},
		{"an unknown method is invalid", Scope{Providers: []string{"p"}, Endpoints: []string{"GTE /v1/x"}}, false},
		{"a relative endpoint path is invalid", Scope{Providers: []string{"p"}, Endpoints: []string{"GET v1"}}, false},
		{"an any-path endpoint is valid", Scope{Providers: []string{"p"}, Endpoints: []string{"GET *"}}, true},
		{"an endpoint glob starting with a star is valid, as in the policy file", Scope{Providers: []string{"p"}, Endpoints: []string{"GET */models"}}, true},
		{"a negative limit is invalid", Scope{Providers: []string{"p"}, MaxTokens: -1}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.scope.Validate(); (err == nil) != tt.ok {
				t.Fatalf("Validate(%+v) = %v, want ok=%v", tt.scope, err, tt.ok)
			}
		})
	}
}
