package meter

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tokfence/tokfence/daemon/audit"
	"github.com/tokfence/tokfence/daemon/jsonscan"
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
		{"openai-responses.json", "application/json", audit.Usage{InputTokens: 40, OutputTokens: 7, CachedTokens: 32}},
		{"openai-responses-stream.sse", "text/event-stream; charset=utf-8", audit.Usage{InputTokens: 9, OutputTokens: 3, CachedTokens: 4}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "usage", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			for _, chunk := range []int{1, 7, 64, len(b)} { // usage must not depend on chunking
				tap := NewTap(tt.ct)
				for i := 0; i < len(b); i += chunk {
					tap.Write(b[i:min(i+chunk, len(b))])
				}
				got := tap.Usage()
				if got == nil || *got != tt.want {
					t.Fatalf("chunk %d: usage = %+v, want %+v", chunk, got, tt.want)
				}
			}
		})
	}
	if u := NewTap("application/json"); func() *audit.Usage { u.Write([]byte(`{"id":"x"}`)); return u.Usage() }() != nil {
		t.Fatal("a body without usage reported usage")
	}
}

// Only top-level usage members count: usage-shaped text inside a reply's
// content, or a usage object nested elsewhere, is not the provider's count.
func TestUsageTapIgnoresNestedUsage(t *testing.T) {
	tap := NewTap("application/json")
	tap.Write([]byte(`{"choices":[{"message":{"content":"{\"usage\":{\"prompt_tokens\":999}}","usage":{"prompt_tokens":888}}}],` +
		"\n" + `"usage":{"prompt_tokens":5,"completion_tokens":7}}`))
	u := tap.Usage()
	if u == nil || u.InputTokens != 5 || u.OutputTokens != 7 {
		t.Fatalf("usage = %+v, want 5 in / 7 out", u)
	}
	tap = NewTap("application/json")
	tap.Write([]byte(`{"usage":{"prompt_tokens":5},`)) // cut short
	if u := tap.Usage(); u != nil {
		t.Fatalf("usage of an invalid body = %+v, want none", u)
	}
}

// The usage object is read by hand, not by encoding/json; these are the
// cases where a hand parser could plausibly go wrong.
func TestUsageMergeEdgeCases(t *testing.T) {
	tests := []struct {
		doc  string
		want *audit.Usage
	}{
		{`{"usage":{"prompt_tokens":5,"completion_tokens":7}}`, &audit.Usage{InputTokens: 5, OutputTokens: 7}},
		{`{"usage":{}}`, &audit.Usage{}}, // present, all zero
		{`{"usage":null}`, nil},          // absent
		{`{"usage":{"prompt_tokens":null}}`, &audit.Usage{}},
		{`{"usage":{"prompt_tokens":5.0}}`, nil}, // not an integer: the document is unreadable
		{`{"usage":{"prompt_tokens":1e3}}`, nil},
		{`{"usage":{"prompt_tokens":"5"}}`, nil},
		{`{"usage":{"prompt_tokens":1234567890123456789}}`, nil}, // past 18 digits
		{`{"usage":{"prompt_tokens":-3,"completion_tokens":2}}`, &audit.Usage{OutputTokens: 2}},
		{`{"usage":[1,2]}`, nil},
		{`{"usage":{"prompt_tokens":5},"usage":{"completion_tokens":7}}`, &audit.Usage{InputTokens: 5, OutputTokens: 7}},
		{`{"usage":{"prompt_tokens":5},"usage":null}`, nil},
		{`{"usage":{"prompt_tokens":9,"prompt_tokens_details":{"cached_tokens":4,"audio_tokens":1}}}`, &audit.Usage{InputTokens: 9, CachedTokens: 4}},
		{`{"usage":{"prompt_tokens_details":7}}`, nil},
		{`{"usage":{"prompt_tokens_details":null,"prompt_tokens":2}}`, &audit.Usage{InputTokens: 2}},
		{`{"usage":{"input_tokens":10,"cache_read_input_tokens":3,"output_tokens":1}}`, &audit.Usage{InputTokens: 13, OutputTokens: 1, CachedTokens: 3}},
		{`{"usage":{"input_tokens":4,"cache_creation_input_tokens":900,"cache_read_input_tokens":30,"output_tokens":1}}`, &audit.Usage{InputTokens: 934, OutputTokens: 1, CachedTokens: 30, CacheWriteTokens: 900}},
		{`{"usageMetadata":{"promptTokenCount":8,"candidatesTokenCount":21,"cachedContentTokenCount":2}}`, &audit.Usage{InputTokens: 8, OutputTokens: 21, CachedTokens: 2}},
		{`{"type":"message_start","message":{"usage":{"input_tokens":25,"output_tokens":1}}}`, &audit.Usage{InputTokens: 25, OutputTokens: 1}},
		{`{"message":{"usage":null}}`, nil},
		{`{"message":"hi"}`, nil},
		{`{"us\u0061ge":{"prompt_tokens":6}}`, &audit.Usage{InputTokens: 6}}, // escaped keys spell what they spell
		{`{"usage":{"prompt_tok\u0065ns":6}}`, &audit.Usage{InputTokens: 6}},
		{`{"Usage":{"prompt_tokens":6}}`, nil}, // keys match exactly
		{`{"usage":{"Prompt_Tokens":6}}`, &audit.Usage{}},
		{`{"choices":[{"usage":{"prompt_tokens":999}}]}`, nil},
	}
	for _, tt := range tests {
		tap := NewTap("application/json")
		tap.Merge([]byte(tt.doc))
		got := tap.Result()
		if (got == nil) != (tt.want == nil) || (got != nil && *got != *tt.want) {
			t.Errorf("%s: usage = %+v, want %+v", tt.doc, got, tt.want)
		}
	}
}

// FuzzUsageMerge holds the hand-written usage reader to encoding/json's
// reading of the same fields (refUsage below), on every document where
// the two are meant to agree: keys spelled exactly, counts of at most 18
// digits.
func FuzzUsageMerge(f *testing.F) {
	for _, s := range []string{
		`{"usage":{"prompt_tokens":5,"completion_tokens":7,"prompt_tokens_details":{"cached_tokens":1}}}`,
		`{"usageMetadata":{"promptTokenCount":8,"candidatesTokenCount":21}}`,
		`{"message":{"usage":{"input_tokens":25,"cache_read_input_tokens":3,"cache_creation_input_tokens":7}}}`,
		`{"usage":null,"message":{"usage":{}}}`, `{"usage":null}`, `{"usage":{"prompt_tokens":5.5}}`, `[1]`, `{}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		if bytes.IndexByte(doc, '\\') >= 0 || longDigitRun(doc) || foldedKey(doc) {
			t.Skip()
		}
		tap := NewTap("application/json")
		tap.Merge(doc)
		got, want := tap.Result(), refUsage(doc)
		if (got == nil) != (want == nil) || (got != nil && *got != *want) {
			t.Fatalf("%q: usage = %+v, encoding/json reads %+v", doc, got, want)
		}
	})
}

func longDigitRun(b []byte) bool {
	run := 0
	for _, c := range b {
		if c >= '0' && c <= '9' {
			if run++; run > 18 {
				return true
			}
		} else {
			run = 0
		}
	}
	return false
}

// foldedKey reports whether doc spells a usage key in another case, which
// encoding/json matches and the daemon does not.
func foldedKey(doc []byte) bool {
	for _, k := range []string{"usage", "usagemetadata", "message", "prompt_tokens", "completion_tokens",
		"prompt_tokens_details", "cached_tokens", "input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens",
		"prompttokencount", "candidatestokencount", "cachedcontenttokencount"} {
		q := []byte(`"` + k + `"`)
		for i := 0; i+len(q) <= len(doc); i++ {
			if bytes.EqualFold(doc[i:i+len(q)], q) && !bytes.Equal(doc[i:i+len(q)], q) &&
				!bytes.Equal(doc[i:i+len(q)], []byte(`"`+refExact(k)+`"`)) {
				return true
			}
		}
	}
	return false
}

// refExact is the exact spelling of a lowercased key.
func refExact(k string) string {
	switch k {
	case "usagemetadata":
		return "usageMetadata"
	case "prompttokencount":
		return "promptTokenCount"
	case "candidatestokencount":
		return "candidatesTokenCount"
	case "cachedcontenttokencount":
		return "cachedContentTokenCount"
	}
	return k
}

// refUsage reads the usage objects of doc with encoding/json, as the
// daemon did before it read them by hand, and folds them as the daemon
// does: only the reading differs.
func refUsage(doc []byte) *audit.Usage {
	type fields struct {
		PromptTokens     int64 `json:"prompt_tokens"`
		CompletionTokens int64 `json:"completion_tokens"`
		InputTokens      int64 `json:"input_tokens"`
		OutputTokens     int64 `json:"output_tokens"`
		CacheRead        int64 `json:"cache_read_input_tokens"`
		CacheWrite       int64 `json:"cache_creation_input_tokens"`
		PromptDetails    struct {
			Cached int64 `json:"cached_tokens"`
		} `json:"prompt_tokens_details"`
		PromptTokenCount     int64 `json:"promptTokenCount"`
		CandidatesTokenCount int64 `json:"candidatesTokenCount"`
		CachedContentCount   int64 `json:"cachedContentTokenCount"`
	}
	var e struct {
		Usage         *fields
		UsageMetadata *fields
		Message       *struct{ Usage *fields }
	}
	err := jsonscan.Members(doc, func(key, val []byte) error {
		var dst any
		switch {
		case jsonscan.IsKey(key, "usage"):
			dst = &e.Usage
		case jsonscan.IsKey(key, "usageMetadata"):
			dst = &e.UsageMetadata
		case jsonscan.IsKey(key, "message"):
			dst = &e.Message
		default:
			return nil
		}
		return json.Unmarshal(val, dst)
	})
	if err != nil {
		return nil
	}
	var msg *fields
	if e.Message != nil {
		msg = e.Message.Usage
	}
	tap := NewTap("application/json")
	for _, f := range []*fields{e.Usage, e.UsageMetadata, msg} {
		if f != nil {
			tap.fold(usageFields{PromptTokens: f.PromptTokens, CompletionTokens: f.CompletionTokens, PromptCached: f.PromptDetails.Cached,
				InputTokens: f.InputTokens, OutputTokens: f.OutputTokens, CacheRead: f.CacheRead, CacheWrite: f.CacheWrite,
				PromptTokenCount: f.PromptTokenCount, CandidatesTokenCount: f.CandidatesTokenCount, CachedContentCount: f.CachedContentCount})
		}
	}
	return tap.Result()
}

// TestPruneKeepsWhatABudgetReads: Prune drops the tallies of unknown
// sessions and of past days and months, and keeps today's, this month's
// and those of known sessions.
func TestPruneKeepsWhatABudgetReads(t *testing.T) {
	m := New()
	now := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	m.Add("live", "a", now, 10, 100, false)
	m.Add("gone", "a", now.AddDate(0, 0, -1), 20, 200, false)
	m.Add("gone2", "b", now.AddDate(0, -1, 0), 30, 300, false)
	m.Prune(now, func(sid string) bool { return sid == "live" })
	if m.Session("live").Tokens != 10 || m.Session("gone").Tokens != 0 {
		t.Errorf("sessions after Prune: live %+v, gone %+v", m.Session("live"), m.Session("gone"))
	}
	if got := get(m, m.days, dayOf("a", now)); got.Tokens != 10 || len(m.days) != 1 {
		t.Errorf("days after Prune: today %+v, %d kept", got, len(m.days))
	}
	if got := get(m, m.months, monthOf("a", now)); got.Tokens != 30 || len(m.months) != 1 {
		t.Errorf("months after Prune: this month %+v (want 10+20), %d kept", got, len(m.months))
	}
}
