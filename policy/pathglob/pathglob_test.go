package pathglob

import (
	"errors"
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	tests := []struct {
		name, pattern string
		want          string // a substring of the error; "" for valid
	}{
		{"a literal is valid", "gpt-4o", ""},
		{"a trailing star is valid", "gpt-4o*", ""},
		{"a model id with slashes and a colon is valid", "meta-llama/Llama-3*:free", ""},
		{"a path glob is valid", "/v1/projects/*/locations/*/models/*:streamGenerateContent", ""},
		{"a lone star is valid", "*", ""},
		{"the longest glob is valid", strings.Repeat("a", MaxLen), ""},
		{"an empty glob is invalid", "", "glob of 0 bytes: want 1 to 128"},
		{"a glob over the limit is invalid", strings.Repeat("a", MaxLen+1), "glob of 129 bytes"},
		{"a question mark is refused", "gpt-4o-?", `'?' is not supported (only '*' is special)`},
		{"a bracket class is refused", "/v1/models/[a-z]*", `'[' is not supported`},
		{"a closing bracket is refused", "a]", `']' is not supported`},
		{"a brace alternation is refused", "{a,b}", `'{' is not supported`},
		{"a backslash escape is refused", `a\*`, `'\\' is not supported`},
		{"a double star is refused", "/v1/**", "use a single '*'"},
		{"a space is refused", "gpt 4o", "byte 0x20 at offset 3 is not printable ASCII"},
		{"a tab is refused", "gpt\t4o", "byte 0x09"},
		{"a newline is refused", "a\nb", "byte 0x0a"},
		{"DEL is refused", "a\x7f", "byte 0x7f"},
		{"a non-ASCII look-alike is refused", "gpt‑4o", "byte 0xe2"},
		{"invalid UTF-8 is refused", "a\xff", "byte 0xff"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Check(tt.pattern)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("Check(%q) = %v, want nil", tt.pattern, err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("Check(%q) = %v, want an error containing %q", tt.pattern, err, tt.want)
			}
		})
	}
}

func TestMatch(t *testing.T) {
	tests := []struct {
		pattern, s string
		want       bool
	}{
		{"*", "", true},
		{"*", "a/b", true},
		{"", "", true},
		{"", "a", false},
		{"gpt-4o", "gpt-4o", true},
		{"gpt-4o", "gpt-4o-mini", false},
		{"gpt-4o*", "gpt-4o-mini", true},
		{"gpt-4o*", "xgpt-4o", false},
		{"claude-*-sonnet", "claude-3-5-sonnet", true},
		{"claude-*-sonnet", "claude-3-sonnet-extra", false},
		{"meta-llama/*", "meta-llama/Llama-3/70b", true},
		{"*/models", "/v1/models", true},
		{"*/models", "/v1beta/models", true},
		{"*/models", "/v1/models/x", false},
		{"*/models/*", "/v1/models/x/y", true},
		{"/v1/*", "/v1/", true},
		{"/v1/*", "/v1", false},
		{"aws-*", "aws-access-key", true},
		{"aws-*", "gcp-key", false},
		{"*key*", "openai-key-v2", true},
		{"a*b*c", "abc", true},
		{"a*b*c", "aXbYbZc", true},
		{"a*b*c", "aXbYbZ", false},
		{"a*b*c", "aXbYc/d", false},
		// Match reads every byte but '*' literally, even those Check refuses.
		{"a**", "a", true},
		{"?", "?", true},
		{"?", "x", false},
		{"[a]", "a", false},
		{"*x", strings.Repeat("a", 100), false},
		{strings.Repeat("*a", 60) + "b", strings.Repeat("a", 4096), false},
	}
	for _, tt := range tests {
		if got := Match(tt.pattern, tt.s); got != tt.want {
			t.Errorf("Match(%q, %q) = %v, want %v", tt.pattern, tt.s, got, tt.want)
		}
	}
}

func TestCheckPath(t *testing.T) {
	tests := []struct {
		name, path string
		want       string // a substring of the error; "" for clean
	}{
		{"the root is clean", "/", ""},
		{"a plain path is clean", "/v1/chat/completions", ""},
		{"a trailing slash is clean", "/v1/models/", ""},
		{"a colon and other punctuation are clean", "/v1beta/models/gemini-1.5-pro:generateContent", ""},
		{"dots inside a segment are clean", "/v1/files/a..b/.well/...", ""},
		{"an unrelated percent encoding is clean", "/v1/files/a%20b%3A", ""},
		{"non-ASCII bytes are clean", "/v1/files/\xc3\xbc", ""},
		{"a relative path is unclean", "v1/models", "does not start with '/'"},
		{"an empty path is unclean", "", "does not start with '/'"},
		{"a doubled slash is unclean", "/v1//models", "empty segment"},
		{"a leading doubled slash is unclean", "//v1/models", "empty segment"},
		{"a doubled trailing slash is unclean", "/v1/models//", "empty segment"},
		{"a dot segment is unclean", "/v1/./models", "dot segment"},
		{"a dot-dot segment is unclean", "/v1/chat/../files", "dot segment"},
		{"a final dot-dot is unclean", "/v1/..", "dot segment"},
		{"a final dot is unclean", "/.", "dot segment"},
		{"a backslash is unclean", "/v1/chat\\..\\files", `'\\' is not allowed`},
		{"a path parameter is unclean", "/v1/..;/admin", `';' is not allowed`},
		{"a question mark is unclean", "/v1/models?x", `'?' is not allowed`},
		{"a fragment is unclean", "/v1/models#x", `'#' is not allowed`},
		{"a NUL is unclean", "/v1/chat\x00", "control character"},
		{"a newline is unclean", "/v1/chat\n", "control character"},
		{"a space is unclean", "/v1/chat completions", "control character or space"},
		{"DEL is unclean", "/v1/\x7f", "control character"},
		{"an encoded slash is unclean", "/v1/files%2fx", `encoded "%2f"`},
		{"an upper-case encoded slash is unclean", "/v1/files%2Fx", `encoded "%2F"`},
		{"an encoded backslash is unclean", "/v1/..%5cadmin", `encoded "%5c"`},
		{"an encoded dot is unclean", "/v1/%2e%2e/admin", `encoded "%2e"`},
		{"an encoded semicolon is unclean", "/v1/..%3B/admin", `encoded "%3B"`},
		{"an encoded NUL is unclean", "/v1/chat%00", `encoded "%00"`},
		{"a double encoding is unclean", "/v1/%252fetc", `encoded "%25"`},
		{"a percent at the end is not an encoding", "/v1/a%", ""},
		{"a percent and one digit is not an encoding", "/v1/a%2", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckPath(tt.path)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("CheckPath(%q) = %v, want nil", tt.path, err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want) || !errors.Is(err, ErrUnclean)):
				t.Fatalf("CheckPath(%q) = %v, want an ErrUnclean containing %q", tt.path, err, tt.want)
			}
		})
	}
}

func TestCheckPathNeverQuotesThePath(t *testing.T) {
	const secret = "sk-proj-SECRETSECRET"
	for _, p := range []string{"v1/" + secret, "/v1//" + secret, "/v1/../" + secret, "/" + secret + ";x", "/" + secret + "%2f", "/" + secret + "\n"} {
		if err := CheckPath(p); err == nil || strings.Contains(err.Error(), "SECRET") {
			t.Errorf("CheckPath(%q) = %v, want an error that does not quote the path", p, err)
		}
	}
}

func TestParseEndpoint(t *testing.T) {
	tests := []struct {
		name, s string
		want    Endpoint
		err     string // a substring of the error; "" for valid
	}{
		{"a method and a path", "POST /v1/chat/*", Endpoint{"POST", "/v1/chat/*"}, ""},
		{"any method", "* /v1/models", Endpoint{"*", "/v1/models"}, ""},
		{"a glob that starts with a star", "GET */models", Endpoint{"GET", "*/models"}, ""},
		{"any path", "GET *", Endpoint{"GET", "*"}, ""},
		{"no method", "/v1/models", Endpoint{}, `bad endpoint "/v1/models" (want "METHOD /glob"`},
		{"no glob", "GET ", Endpoint{}, `bad endpoint "GET " (want`},
		{"a lower-case method", "get /v1/models", Endpoint{}, `unknown method "get"`},
		{"an unknown method", "GTE /v1/models", Endpoint{}, `unknown method "GTE"`},
		{"CONNECT", "CONNECT *", Endpoint{}, `unknown method "CONNECT"`},
		{"a relative glob", "GET v1/models", Endpoint{}, `glob "v1/models" must start with '/' or '*'`},
		{"two spaces", "GET  /v1/models", Endpoint{}, `glob " /v1/models" must start with '/' or '*'`},
		{"a bracket class", "GET /v1/models/[a-z]*", Endpoint{}, `bad endpoint "GET /v1/models/[a-z]*": glob "/v1/models/[a-z]*": '[' is not supported`},
		{"a space inside the glob", "GET /v1/a b", Endpoint{}, "not printable ASCII"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseEndpoint(tt.s)
			switch {
			case tt.err == "" && (err != nil || got != tt.want):
				t.Fatalf("ParseEndpoint(%q) = %+v, %v; want %+v", tt.s, got, err, tt.want)
			case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
				t.Fatalf("ParseEndpoint(%q) = %+v, %v; want an error containing %q", tt.s, got, err, tt.err)
			case err == nil && got.String() != tt.s:
				t.Fatalf("ParseEndpoint(%q).String() = %q, want it back", tt.s, got.String())
			}
		})
	}
}

func TestEndpointMatch(t *testing.T) {
	tests := []struct {
		endpoint, method, path string
		want                   bool
	}{
		{"POST /v1/chat/*", "POST", "/v1/chat/completions", true},
		{"POST /v1/chat/*", "GET", "/v1/chat/completions", false},
		{"POST /v1/chat/*", "post", "/v1/chat/completions", false},
		{"POST /v1/chat/*", "POST", "/v1/chat", false},
		{"* /v1/models", "DELETE", "/v1/models", true},
		{"* /v1/models", "GET", "/v1/models/x", false},
		{"GET */models", "GET", "/v1beta/models", true},
	}
	for _, tt := range tests {
		e, err := ParseEndpoint(tt.endpoint)
		if err != nil {
			t.Fatal(err)
		}
		if got := e.Match(tt.method, tt.path); got != tt.want {
			t.Errorf("%q.Match(%q, %q) = %v, want %v", tt.endpoint, tt.method, tt.path, got, tt.want)
		}
	}
}
