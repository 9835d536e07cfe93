package daemon

import (
	"bytes"
	"encoding/json"
	"strings"

	"github.com/tokfence/tokfence/daemon/audit"
)

// maxUsageBody bounds how much of a non-streaming JSON reply is kept to
// read its usage object: chat replies are kilobytes; past this we give up
// on usage rather than hold memory.
const maxUsageBody = 4 << 20

// maxUsageLine bounds one SSE line kept while looking for usage events.
const maxUsageLine = 256 << 10

// usageTap watches a response body go by and extracts token usage: the
// usage object of a JSON reply (OpenAI, Anthropic, Gemini usageMetadata),
// or the usage events of an SSE stream (OpenAI's final chunk, Anthropic's
// message_start and message_delta).
type usageTap struct {
	sse  bool
	json bool
	buf  bytes.Buffer // whole body (json) or the current partial line (sse)
	over bool
	u    audit.Usage
	seen bool
}

func newUsageTap(contentType string) *usageTap {
	ct := strings.ToLower(contentType)
	return &usageTap{sse: strings.Contains(ct, "text/event-stream"), json: strings.Contains(ct, "json")}
}

func (t *usageTap) write(p []byte) {
	switch {
	case t.sse:
		for len(p) > 0 {
			i := bytes.IndexByte(p, '\n')
			if i < 0 {
				t.keep(p)
				return
			}
			t.keep(p[:i])
			if !t.over {
				t.line(t.buf.Bytes())
			}
			t.buf.Reset()
			t.over = false
			p = p[i+1:]
		}
	case t.json:
		t.keep(p)
	}
}

func (t *usageTap) keep(p []byte) {
	limit := maxUsageLine
	if !t.sse {
		limit = maxUsageBody
	}
	if t.over || t.buf.Len()+len(p) > limit {
		t.over = true
		t.buf.Reset()
		return
	}
	t.buf.Write(p)
}

// usageFields covers the field names of the three usage dialects.
type usageFields struct {
	PromptTokens     int64 `json:"prompt_tokens"`
	CompletionTokens int64 `json:"completion_tokens"`
	InputTokens      int64 `json:"input_tokens"`
	OutputTokens     int64 `json:"output_tokens"`
	CacheRead        int64 `json:"cache_read_input_tokens"`
	PromptDetails    struct {
		Cached int64 `json:"cached_tokens"`
	} `json:"prompt_tokens_details"`
	PromptTokenCount     int64 `json:"promptTokenCount"`
	CandidatesTokenCount int64 `json:"candidatesTokenCount"`
	CachedContentCount   int64 `json:"cachedContentTokenCount"`
}

type usageEnvelope struct {
	Usage         *usageFields `json:"usage"`
	UsageMetadata *usageFields `json:"usageMetadata"`
	Message       *struct {
		Usage *usageFields `json:"usage"`
	} `json:"message"`
}

func (t *usageTap) line(l []byte) {
	data, ok := bytes.CutPrefix(l, []byte("data:"))
	if !ok || !bytes.Contains(data, []byte("sage")) {
		return
	}
	t.merge(bytes.TrimSpace(data))
}

// merge folds the usage objects of the JSON document doc into t. Only the
// members that can hold usage are decoded; a reply's content is skipped.
func (t *usageTap) merge(doc []byte) {
	var e usageEnvelope
	err := members(doc, func(key, val []byte) error {
		var dst any
		switch {
		case isKey(key, "usage"):
			dst = &e.Usage
		case isKey(key, "usageMetadata"):
			dst = &e.UsageMetadata
		case isKey(key, "message"):
			dst = &e.Message
		default:
			return nil
		}
		if json.Unmarshal(val, dst) != nil {
			return errBodyInvalid
		}
		return nil
	})
	if err != nil {
		return
	}
	for _, f := range []*usageFields{e.Usage, e.UsageMetadata, messageUsage(e)} {
		if f == nil {
			continue
		}
		t.seen = true
		in := max(f.PromptTokens, f.InputTokens, f.PromptTokenCount)
		if f.InputTokens > 0 && f.PromptTokens == 0 {
			in += f.CacheRead // Anthropic counts cache reads apart from input_tokens
		}
		out := max(f.CompletionTokens, f.OutputTokens, f.CandidatesTokenCount)
		cached := max(f.CacheRead, f.PromptDetails.Cached, f.CachedContentCount)
		// Streams report cumulative counts (Anthropic's message_delta
		// repeats input_tokens): keep the largest seen of each.
		t.u.InputTokens = max(t.u.InputTokens, in)
		t.u.OutputTokens = max(t.u.OutputTokens, out)
		t.u.CachedTokens = max(t.u.CachedTokens, cached)
	}
}

func messageUsage(e usageEnvelope) *usageFields {
	if e.Message == nil {
		return nil
	}
	return e.Message.Usage
}

// usage returns what was found, or nil when the body carried none.
func (t *usageTap) usage() *audit.Usage {
	if t.json && !t.sse && !t.over {
		t.merge(t.buf.Bytes())
	}
	if !t.seen {
		return nil
	}
	u := t.u
	return &u
}
