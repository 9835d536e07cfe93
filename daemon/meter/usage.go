package meter

import (
	"bytes"
	"strings"

	"github.com/tokfence/tokfence/daemon/audit"
	"github.com/tokfence/tokfence/daemon/jsonscan"
)

// maxUsageBody bounds how much of a non-streaming JSON reply is kept to
// read its usage object: chat replies are kilobytes; past this we give up
// on usage rather than hold memory.
const maxUsageBody = 4 << 20

// maxUsageLine bounds one SSE line kept while looking for usage events.
const maxUsageLine = 256 << 10

// Tap watches a response body go by and extracts token usage: the
// usage object of a JSON reply (OpenAI, Anthropic, Gemini usageMetadata),
// or the usage events of an SSE stream (OpenAI's final chunk, Anthropic's
// message_start and message_delta, the Responses API's response.completed).
type Tap struct {
	sse  bool
	json bool
	buf  bytes.Buffer // whole body (json) or the current partial line (sse)
	over bool
	u    audit.Usage
	seen bool
}

func NewTap(contentType string) *Tap {
	ct := strings.ToLower(contentType)
	return &Tap{sse: strings.Contains(ct, "text/event-stream"), json: strings.Contains(ct, "json")}
}

func (t *Tap) Write(p []byte) {
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

func (t *Tap) keep(p []byte) {
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
	PromptTokens, CompletionTokens, PromptCached int64 // OpenAI
	InputTokens, OutputTokens, CacheRead         int64 // Anthropic
	CacheWrite                                   int64 // Anthropic's cache_creation_input_tokens
	PromptTokenCount, CandidatesTokenCount       int64 // Gemini
	CachedContentCount                           int64
}

// set reads one member of a usage object. Only the counts are read; other
// members are skipped. A count must be a JSON integer (or null, which
// leaves it 0): anything else makes the whole document unreadable, as it
// would for encoding/json decoding into int64. Keys match exactly.
func (f *usageFields) set(key, val []byte) error {
	var dst *int64
	switch string(jsonscan.KeyText(key)) {
	case "prompt_tokens":
		dst = &f.PromptTokens
	case "completion_tokens":
		dst = &f.CompletionTokens
	case "prompt_tokens_details", "input_tokens_details": // Chat Completions, Responses
		return objectMembers(val, func(k, v []byte) error {
			if jsonscan.IsKey(k, "cached_tokens") {
				return jsonCount(v, &f.PromptCached)
			}
			return nil
		})
	case "input_tokens":
		dst = &f.InputTokens
	case "output_tokens":
		dst = &f.OutputTokens
	case "cache_read_input_tokens":
		dst = &f.CacheRead
	case "cache_creation_input_tokens":
		dst = &f.CacheWrite
	case "promptTokenCount":
		dst = &f.PromptTokenCount
	case "candidatesTokenCount":
		dst = &f.CandidatesTokenCount
	case "cachedContentTokenCount":
		dst = &f.CachedContentCount
	default:
		return nil
	}
	return jsonCount(val, dst)
}

// jsonCount stores the JSON integer val in *dst; null leaves *dst alone.
func jsonCount(val []byte, dst *int64) error {
	if string(val) == "null" {
		return nil
	}
	neg, digits := false, val
	if len(digits) > 0 && digits[0] == '-' {
		neg, digits = true, digits[1:]
	}
	if len(digits) == 0 || len(digits) > 18 { // 18 digits cannot overflow int64
		return jsonscan.ErrInvalid
	}
	var n int64
	for _, c := range digits {
		if c < '0' || c > '9' {
			return jsonscan.ErrInvalid
		}
		n = n*10 + int64(c-'0')
	}
	if neg {
		n = -n
	}
	*dst = n
	return nil
}

// objectMembers calls fn with each member of val, a value inside a
// document members has validated: nothing for null, an error for anything
// but an object.
func objectMembers(val []byte, fn func(key, val []byte) error) error {
	switch val[0] {
	case 'n':
		return nil
	case '{':
		return jsonscan.EachMember(val, fn)
	}
	return jsonscan.ErrInvalid
}

func (t *Tap) line(l []byte) {
	data, ok := bytes.CutPrefix(l, []byte("data:"))
	if !ok || !bytes.Contains(data, []byte("sage")) {
		return
	}
	t.Merge(bytes.TrimSpace(data))
}

// merge folds the usage objects of the JSON document doc into t: the
// top-level usage (OpenAI, Anthropic) or usageMetadata (Gemini) object, or
// message.usage (Anthropic's message_start event) or response.usage (the
// OpenAI Responses API's response.completed event). Only those members are
// read; a reply's content is skipped, not decoded. A document with any of
// them malformed adds nothing.
func (t *Tap) Merge(doc []byte) {
	var found [3]usageFields
	var seen [3]bool
	read := func(i int, val []byte) error {
		seen[i] = val[0] == '{' // an empty object counts, as zeros; null does not
		return objectMembers(val, found[i].set)
	}
	err := jsonscan.Members(doc, func(key, val []byte) error {
		switch string(jsonscan.KeyText(key)) {
		case "usage":
			return read(0, val)
		case "usageMetadata":
			return read(1, val)
		case "message", "response": // Anthropic's message_start, the Responses API's events
			return objectMembers(val, func(k, v []byte) error {
				if jsonscan.IsKey(k, "usage") {
					return read(2, v)
				}
				return nil
			})
		}
		return nil
	})
	if err != nil {
		return
	}
	for i, f := range found {
		if seen[i] {
			t.fold(f)
		}
	}
}

// fold adds one usage object's counts to t, in whichever dialect they came.
func (t *Tap) fold(f usageFields) {
	t.seen = true
	in := max(f.PromptTokens, f.InputTokens, f.PromptTokenCount)
	written := int64(0)
	if f.InputTokens > 0 && f.PromptTokens == 0 {
		// Anthropic counts cache reads and writes apart from input_tokens.
		in += f.CacheRead + f.CacheWrite
		written = f.CacheWrite
	}
	out := max(f.CompletionTokens, f.OutputTokens, f.CandidatesTokenCount)
	cached := max(f.CacheRead, f.PromptCached, f.CachedContentCount)
	// Streams report cumulative counts (Anthropic's message_delta repeats
	// input_tokens): keep the largest seen of each.
	t.u.InputTokens = max(t.u.InputTokens, in)
	t.u.OutputTokens = max(t.u.OutputTokens, out)
	t.u.CachedTokens = max(t.u.CachedTokens, cached)
	t.u.CacheWriteTokens = max(t.u.CacheWriteTokens, written)
}

// usage returns what was found, or nil when the body carried none.
func (t *Tap) Usage() *audit.Usage {
	if t.json && !t.sse && !t.over {
		t.Merge(t.buf.Bytes())
	}
	return t.Result()
}

// whole returns the usage of a reply read whole into body, which the tap
// was not given: a reply held whole is not copied a second time for it.
func (t *Tap) Whole(body []byte) *audit.Usage {
	if t.json && !t.sse {
		t.Merge(body)
	}
	return t.Result()
}

// result is the usage merged so far, or nil when none was seen.
func (t *Tap) Result() *audit.Usage {
	if !t.seen {
		return nil
	}
	u := t.u
	return &u
}

// SSE reports whether the tapped reply is an event stream.
func (t *Tap) SSE() bool { return t.sse }
