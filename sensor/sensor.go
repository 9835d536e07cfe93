// Package sensor finds secrets in HTTP bodies as they stream through the
// Tokfence proxy: the provider keys it holds, the capability tokens it
// issued, per-session canaries, and well-known key formats it does not hold.
//
// Threat model: the agent (and, for responses, the upstream) controls the
// body and wants a secret out. It may encode it (base64, base64url, hex,
// base64 of base64 or of hex), escape it (JSON \uXXXX escapes, percent
// escapes, both mixed), disguise it (fullwidth letters, zero-width
// characters inside it), or split it (across SSE events, JSON array
// elements, or "a" + "b" concatenations), and it chooses where the chunk
// boundaries fall. The sensor does not defend against encodings it does not
// undo (encryption, compression, arbitrary transforms, a secret spelled out
// one character per request); it raises the cost of accidental and casual
// leaks and catches the common exfiltration shapes.
//
// Invariants:
//
//   - A Hit never carries the matched bytes; it names the rule, the secret's
//     ID, the encoding and a keyed 8-hex-digit fingerprint.
//   - A Matcher is safe for concurrent use, Put and Delete included; a
//     Stream is used by one goroutine. A stream finds every secret put
//     before it started that is not deleted before it ends (one it is
//     halfway through when it is deleted, too). A secret put or deleted
//     while it runs is found, or not, from some point on.
//   - Put and Delete cost the secret's own forms, whatever else the matcher
//     holds, and a deleted secret leaves nothing behind: the memory a
//     matcher holds follows the secrets it holds, not those it ever held.
//   - Stream.Write returns only bytes that can no longer start a match, so a
//     secret sent within one body piece is never forwarded whole, in any
//     encoding the matcher knows. Memory per stream is bounded (tens of
//     kilobytes at most, scaling with the longest pattern), never with the
//     body; a stream with ordinary traffic uses a few kilobytes.
//   - Bytes are held back at most MaxHold bytes. Past that (a match spread
//     out by thousands of zero-width characters, say) the oldest bytes are
//     forwarded anyway: detection still happens when the match completes, but
//     redaction may then cover only its unforwarded part.
//
// How it works: each held secret is expanded into its encoded forms (raw;
// the stable inner runs of base64 and base64url at the three byte
// alignments, which match padded and unpadded blobs alike; hex in both
// cases; base64 of base64 and base64 of hex), and those forms go into the
// matcher's book: a trie of 8-byte chunks behind a filter of the forms'
// first 8 bytes (see book.go). The format rules' keywords, in their
// encodings, go into one Aho–Corasick automaton, built once. A stream
// feeds every byte through a normaliser (JSON escapes, percent escapes,
// fullwidth forms, zero-width characters) into that automaton and tests
// its last 8 normalised bytes against the filter, remembering for a
// bounded window where each normalised byte came from, so a hit can name
// and redact the original run. A window the filter passes is looked up in
// the trie and, if a held form begins with it, opens an exact candidate
// that follows the trie byte by byte. Two more lanes do the same over
// reassembled text: string pieces joined across `","` and `" + "` gaps,
// and, for text/event-stream bodies, the text deltas of OpenAI and
// Anthropic streams joined across events. A keyword opens a format
// candidate that the rule's charset, length and plausibility checks
// confirm or drop. Plain text in which no keyword form and no held form
// begins (most prose and JSON) skips the per-byte steps: see Stream.block
// and, without format rules, Stream.skim (skim.go), which reads a word of
// 8 bytes at a time, undoes the common escapes in place, and tests a word
// only where 8 key characters in a row end in it, by its runs of 4 at
// positions divisible by 4 (the filter keeps every anchor's pieces of 4).
// In front of both, the leap (leap.go) classifies 64 bytes at a time
// into bit masks, proves whole stretches clear between breakers, and
// skips them without keeping any lane state.
//
// Format rules see through the same layers as the exact forms: base64,
// base64url or hex, and base64 or base64url of base64 or of hex. The
// keywords' encoded forms are patterns too, and a hit on one decodes the
// encoded run, layer by layer, once it ends.
//
// Limits worth knowing: the join lane joins only runs of token characters
// [A-Za-z0-9+/=_.~-], so a multi-line PEM key split across array elements
// may be missed; a hit on a base64 form redacts its stable run, leaving the
// one or two boundary characters that also encode neighbouring bytes; the
// PEM rule confirms on the header and the first 40 body characters and
// redacts only those, so the caller should cut the stream on that hit;
// Options.Redact runs inside Write and must be quick; a lane follows at
// most 64 overlapping exact candidates, which only a secret that repeats
// itself can exceed, in input made of it; the last few bytes of a write
// may be held for one more write when the filter cannot rule out that
// they begin a held form (never after a line break, a quote or a brace,
// unless a held secret begins with one). A stream's memory is
// at most three rings of 8 bytes per position (a power of two covering the
// longest keyword run and held form when the stream starts; a form put
// later that does not fit is not found by it), plus the held bytes and
// the last chunk. The rings start small and double only when a partial match, an
// open candidate or a run the joiner may replay needs more of the window,
// so most streams never allocate them at full size.
//
// Split secrets are the exception to "never forwarded": the sensor does not
// hold bytes at SSE event boundaries (that would stall every stream), so
// when a key is split across SSE deltas the earlier pieces may have been
// forwarded before the last one arrives. The hit is reported on the last
// piece, which is held until its event ends and is redacted; the caller is
// expected to revoke the session and cut the stream. Pieces of a JSON array
// or a "+" concatenation within one body are held while the gap between
// them is undecided, so those are redacted whole.
package sensor

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"sync/atomic"
)

// Class is the kind of secret a hit refers to.
type Class string

// Secret classes.
const (
	ClassProviderKey Class = "provider_key"
	ClassToken       Class = "capability_token"
	ClassCanary      Class = "canary"
	ClassFormat      Class = "format"
)

// Direction tells a request body from a response body.
type Direction uint8

// Directions.
const (
	Request Direction = iota
	Response
)

// String returns "request" or "response".
func (d Direction) String() string {
	if d == Response {
		return "response"
	}
	return "request"
}

// Secret is a value the matcher must find. ID is safe to log (a provider
// name, a token's jti, a session id); Value never is.
type Secret struct {
	ID    string
	Class Class
	Value []byte
}

// Hit is one sighting of a secret. It never contains the matched bytes.
type Hit struct {
	Rule        string // "exact" for known secrets, else the format rule name
	Class       Class
	SecretID    string // for exact hits; "" for format hits
	Encoding    string // the layers undone to find it, e.g. "json-escape+base64"
	Direction   Direction
	Offset      int64  // original byte offset where the matched run starts
	Fingerprint string // Fingerprint(FingerprintKey, secret value)
}

// Options configures a Matcher.
type Options struct {
	FormatRules    bool           // also run the format rules
	FingerprintKey []byte         // key for Fingerprint; set it, or fingerprints are plain hashes
	Redact         func(Hit) bool // which hits to redact from forwarded bytes; nil: none
}

// MinSecretLen is the shortest secret NewMatcher accepts. Shorter values
// match ordinary text too often, and the stable base64 run of a 7-byte
// value is only 8 characters, short enough to occur by chance in image
// data.
const MinSecretLen = 8

// ErrShortSecret is returned by NewMatcher for a secret shorter than
// MinSecretLen.
var ErrShortSecret = errors.New("secret too short")

// holdFactor bounds held-back bytes as a multiple of the lane ring: an
// escaped normalised byte spans up to 9 original bytes (a percent-encoded
// fullwidth letter, %EF%BC%A1), plus slack for join gaps.
const holdFactor = 10

// Matcher matches a book of secrets, which changes as secrets are put and
// deleted, and a fixed set of rules. It is safe for concurrent use.
type Matcher struct {
	a       *automaton // the format rules' keywords, shared by every matcher
	rules   []rule
	span    int64 // the longest run a format candidate collects, plus slack
	book    book
	opts    Options
	fpKey   []byte
	streams sync.Pool // released Streams (see Release)
}

// NewMatcher builds a matcher holding secrets (under the keys "0", "1",
// ... by their index, for Put and Delete) and, if opts.FormatRules is set,
// the built-in format rules. It copies what it keeps.
func NewMatcher(secrets []Secret, opts Options) (*Matcher, error) {
	for _, s := range secrets {
		if len(s.Value) < MinSecretLen {
			return nil, fmt.Errorf("secret %q (%s) has %d bytes, need %d: %w", s.ID, s.Class, len(s.Value), MinSecretLen, ErrShortSecret)
		}
	}
	m := &Matcher{opts: opts, fpKey: append([]byte(nil), opts.FingerprintKey...), a: noRules()}
	var grams []uint64
	if opts.FormatRules {
		m.a, m.rules, m.span, grams = ruleAutomaton(), formatRules, ruleWords().span, keywordGrams()
	}
	m.book.init(grams)
	for i, s := range secrets {
		if err := m.Put(strconv.Itoa(i), s); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// Put adds secret s to the matcher under key, replacing what key held. A
// stream started after Put returns looks for s; one in flight may find it
// from its next write on. The cost is that of s's own forms (about 34 of
// them, some 60 times its length in bytes), whatever else the matcher
// holds.
func (m *Matcher) Put(key string, s Secret) error { return m.book.put(key, s, m.fpKey) }

// Delete removes the secret under key, and every trace of it, and reports
// whether there was one. Streams in flight may still report it for a
// little while (one already halfway through it does); new ones never do.
func (m *Matcher) Delete(key string) bool { return m.book.delete(key) }

// Len returns the number of secrets the matcher holds.
func (m *Matcher) Len() int {
	m.book.mu.RLock()
	defer m.book.mu.RUnlock()
	return len(m.book.entries)
}

// Size returns about how many bytes the matcher's secrets take: their
// forms, the trie that indexes them and its filter. It grows with every
// secret put and shrinks with every one deleted.
func (m *Matcher) Size() int64 { return m.book.size() }

// window returns the lane window for a stream starting now: a power of
// two covering the longest keyword, format run and held form.
func (m *Matcher) window() int64 {
	n := max(m.a.maxLen, m.span, m.book.longest.Load()) + 16
	return int64(pow2(int(n)))
}

// ruleAutomaton is the automaton of the format rules' keyword forms,
// built once: they never change.
var ruleAutomaton = sync.OnceValue(func() *automaton {
	rw := ruleWords()
	return buildAutomaton(rw.words, rw.pats)
})

// noRules is the automaton of a matcher without format rules: no pattern.
var noRules = sync.OnceValue(func() *automaton { return buildAutomaton(nil, nil) })

// keywordWords holds the format rules' keyword forms as automaton words.
type keywordWords struct {
	words [][]byte
	pats  []pattern
	mids  [][]byte // the inner runs of the two-layer forms
	span  int64    // the longest encoded run a one-layer candidate collects, plus slack
}

// ruleWords returns the keyword forms of formatRules, computed once: they
// never change, and every matcher build would otherwise redo them.
var ruleWords = sync.OnceValue(func() *keywordWords {
	kw := &keywordWords{}
	for i, r := range formatRules {
		for j, k := range r.keywords {
			for _, f := range keywordForms([]byte(k)) {
				kw.words = append(kw.words, f.b)
				f.p.ref, f.p.n, f.p.kw, f.p.mid = int32(i), int64(len(f.b)), uint8(j), -1
				if f.mid != nil {
					f.p.mid = int16(len(kw.mids))
					kw.mids = append(kw.mids, f.mid)
				}
				kw.pats = append(kw.pats, f.p)
			}
			kw.span = max(kw.span, decodeLimit(decB64, len(k))+16)
		}
	}
	return kw
})

// MaxHold returns the most bytes a Stream started now ever holds back.
func (m *Matcher) MaxHold() int { return holdFactor * int(m.window()) }

// Set holds the current Matcher. Swapping it does not disturb streams in
// flight: each keeps its own Matcher. (A Matcher that changes through Put
// and Delete needs no swapping.)
type Set struct{ p atomic.Pointer[Matcher] }

// Load returns the current Matcher, or nil before the first Store.
func (s *Set) Load() *Matcher { return s.p.Load() }

// Store makes m the current Matcher.
func (s *Set) Store(m *Matcher) { s.p.Store(m) }

// Fingerprint returns 16 hex digits (64 bits) of HMAC-SHA256(key,
// secret): the one name of a secret on the audit trail (sensor hits, key
// changes, `tokfence audit hash`). Without the key it confirms no guess;
// at 64 bits two secrets share one with odds of about n²/2⁶⁵, so a trail
// of a million distinct secrets has no collision to speak of (8 digits
// collided by 65,000).
func Fingerprint(key, secret []byte) string {
	h := hmac.New(sha256.New, key)
	h.Write(secret)
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// scanChunk is the read size of ScanReader.
const scanChunk = 32 << 10

// ScanReader scans all of r as one body and returns the hits.
func ScanReader(r io.Reader, m *Matcher, dir Direction, contentType string) ([]Hit, error) {
	st := m.NewStream(dir, contentType)
	buf := make([]byte, scanChunk)
	var all []Hit
	for {
		n, err := r.Read(buf)
		if n > 0 {
			_, hits := st.Write(buf[:n])
			all = append(all, hits...)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return all, fmt.Errorf("scan: %w", err)
		}
	}
	_, hits := st.Close()
	return append(all, hits...), nil
}
