package daemon

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/tokfence/tokfence/daemon/audit"
)

func TestUsageTapReadsEveryDialect(t *testing.T) {
	tests := []struct {
		file, ct string
		want     audit.Usage
	}{
		{"openai-chat.json", "application/json", audit.Usage{InputTokens: 19, OutputTokens: 10, CachedTokens: 4}},
		{"openai-chat-stream.sse", "text/event-stream", audit.Usage{InputTokens: 12, OutputTokens: 3}},
		{"anthropic-messages.json", "application/json", audit.Usage{InputTokens: 32, OutputTokens: 11, CachedTokens: 7}},
		{"anthropic-messages-stream.sse", "text/event-stream; charset=utf-8", audit.Usage{InputTokens: 25, OutputTokens: 15}},
		{"gemini-generate.json", "application/json; charset=UTF-8", audit.Usage{InputTokens: 8, OutputTokens: 21}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join("..", "testdata", "usage", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			for _, chunk := range []int{1, 7, 64, len(b)} { // usage must not depend on chunking
				tap := newUsageTap(tt.ct)
				for i := 0; i < len(b); i += chunk {
					tap.write(b[i:min(i+chunk, len(b))])
				}
				got := tap.usage()
				if got == nil || *got != tt.want {
					t.Fatalf("chunk %d: usage = %+v, want %+v", chunk, got, tt.want)
				}
			}
		})
	}
	if u := newUsageTap("application/json"); func() *audit.Usage { u.write([]byte(`{"id":"x"}`)); return u.usage() }() != nil {
		t.Fatal("a body without usage reported usage")
	}
}

// Only top-level usage members count: usage-shaped text inside a reply's
// content, or a usage object nested elsewhere, is not the provider's count.
func TestUsageTapIgnoresNestedUsage(t *testing.T) {
	tap := newUsageTap("application/json")
	tap.write([]byte(`{"choices":[{"message":{"content":"{\"usage\":{\"prompt_tokens\":999}}","usage":{"prompt_tokens":888}}}],` +
		"\n" + `"usage":{"prompt_tokens":5,"completion_tokens":7}}`))
	u := tap.usage()
	if u == nil || u.InputTokens != 5 || u.OutputTokens != 7 {
		t.Fatalf("usage = %+v, want 5 in / 7 out", u)
	}
	tap = newUsageTap("application/json")
	tap.write([]byte(`{"usage":{"prompt_tokens":5},`)) // cut short
	if u := tap.usage(); u != nil {
		t.Fatalf("usage of an invalid body = %+v, want none", u)
	}
}
