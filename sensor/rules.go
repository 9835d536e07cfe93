package sensor

import "bytes"

// A rule recognises a well-known credential format we do not hold. Its
// keywords go into the same automaton as the exact secrets; a keyword hit
// opens a candidate, and the rule's tail check confirms or drops it once
// its run of key characters ends. There is no backtracking: a candidate is
// decided once, when its run ends or reaches the rule's longest key, and
// lives at most maxTail bytes; the PEM check takes each byte in constant
// time (see pemState and cand.go).
type rule struct {
	name     string
	keywords []string
	charset  *[256]bool
	min, max int // tail length bounds, inclusive
	classes  int // minimum number of {lower, upper, digit} classes in the tail
	skip     []string
	pem      bool // the PEM private-key header state machine
}

// maxTail bounds every rule's tail, so a candidate never holds more than
// the longest real key format (OpenAI project keys, ~160 characters).
const maxTail = 200

// pemMaxTail bounds a PEM candidate: a header, pemBody characters and
// room for line breaks. Without it a header followed by endless blank lines
// would keep a candidate (and held bytes) open forever.
const pemMaxTail = 160

// pemBody is how many base64 body characters after a PRIVATE KEY header
// confirm a PEM hit: enough to rule out prose and "..." placeholders.
const pemBody = 40

func charset(spec string) *[256]bool {
	var t [256]bool
	for i := 0; i < len(spec); i++ {
		if i+2 < len(spec) && spec[i+1] == '-' {
			for c := spec[i]; c <= spec[i+2]; c++ {
				t[c] = true
			}
			i += 2
			continue
		}
		t[spec[i]] = true
	}
	return &t
}

var (
	csAlnum   = charset("A-Za-z0-9")
	csKey     = charset("A-Za-z0-9_-")
	csUnder   = charset("A-Za-z0-9_")
	csAWS     = charset("A-Z0-9")
	csSlack   = charset("A-Za-z0-9-")
	csLetters = charset("A-Za-z")
	csB64     = charset("A-Za-z0-9+/=")
)

// formatRules is the built-in rule table. The tails follow the providers'
// published formats; classes and the placeholder words keep documentation
// samples ("sk-your-key-here", "AKIAIOSFODNN7EXAMPLE") from firing.
var formatRules = []rule{
	{name: "openai-key", keywords: []string{"sk-"}, charset: csKey, min: 32, max: maxTail, classes: 3, skip: []string{"ant-"}},
	{name: "anthropic-key", keywords: []string{"sk-ant-"}, charset: csKey, min: 80, max: maxTail, classes: 3},
	{name: "aws-access-key", keywords: []string{"AKIA", "ASIA"}, charset: csAWS, min: 16, max: 16, classes: 1},
	{name: "github-pat", keywords: []string{"ghp_", "gho_", "ghu_", "ghs_", "ghr_"}, charset: csAlnum, min: 36, max: 36, classes: 2},
	{name: "github-pat", keywords: []string{"github_pat_"}, charset: csUnder, min: 82, max: 82, classes: 2},
	{name: "google-api-key", keywords: []string{"AIza"}, charset: csKey, min: 35, max: 35, classes: 2},
	{name: "slack-token", keywords: []string{"xoxb-", "xoxa-", "xoxp-", "xoxr-", "xoxs-"}, charset: csSlack, min: 20, max: maxTail, classes: 2},
	{name: "stripe-key", keywords: []string{"sk_live_", "rk_live_"}, charset: csAlnum, min: 24, max: maxTail, classes: 2},
	{name: "groq-key", keywords: []string{"gsk_"}, charset: csAlnum, min: 52, max: 52, classes: 2},
	{name: "xai-key", keywords: []string{"xai-"}, charset: csAlnum, min: 80, max: 80, classes: 2},
	{name: "huggingface-token", keywords: []string{"hf_"}, charset: csLetters, min: 34, max: 34, classes: 2},
	{name: "pem-private-key", keywords: []string{"-----BEGIN "}, pem: true},
}

// minDistinct caps the distinct characters plausible asks of a long tail:
// placeholders ("sk-proj-XXXX…", "sk-abcabc…") have a handful.
const minDistinct = 20

// placeholders are words that mark a documentation sample, not a key.
var placeholders = [][]byte{
	[]byte("example"), []byte("your"), []byte("xxxx"), []byte("placeholder"),
	[]byte("redacted"), []byte("insert"), []byte("replace"), []byte("dummy"),
}

// verdict is a candidate's state after a byte.
type verdict uint8

const (
	more   verdict = iota // undecided, keep reading
	accept                // a hit ending before the current byte (or at it for PEM)
	reject
)

// stepTail decides a candidate whose tail (bytes after the keyword, the
// newest last) has just grown by one byte; end reports the stream ended
// instead, in which case tail holds no new byte.
func (r *rule) stepTail(tail []byte, end bool) verdict {
	if r.pem {
		return pemStep(tail, end)
	}
	if !end {
		b := tail[len(tail)-1]
		if r.charset[b] {
			if len(tail) > r.max {
				return reject
			}
			return more
		}
		tail = tail[:len(tail)-1]
	}
	if len(tail) < r.min || len(tail) > r.max || !r.plausible(tail) {
		return reject
	}
	return accept
}

// plausible reports whether tail looks like real key material rather than
// a placeholder: enough character classes, no long runs of one character,
// enough distinct characters (a third of the tail, but never more than
// minDistinct: a random 160-character tail over 64 symbols has about 59
// distinct ones, and a third of it would refuse one real key in a
// hundred) and no placeholder word.
func (r *rule) plausible(tail []byte) bool {
	for _, s := range r.skip {
		if bytes.HasPrefix(tail, []byte(s)) {
			return false
		}
	}
	var lo, up, dg bool
	var seen [256]bool
	distinct, run := 0, 1
	for i, b := range tail {
		lo = lo || b >= 'a' && b <= 'z'
		up = up || b >= 'A' && b <= 'Z'
		dg = dg || b >= '0' && b <= '9'
		if !seen[b] {
			seen[b] = true
			distinct++
		}
		if i > 0 && b == tail[i-1] {
			if run++; run >= 5 {
				return false
			}
		} else {
			run = 1
		}
	}
	if n := btoi(lo) + btoi(up) + btoi(dg); n < r.classes || distinct < min((len(tail)+2)/3, minDistinct) {
		return false
	}
	for _, p := range placeholders {
		if containsFold(tail, p) {
			return false
		}
	}
	return true
}

// pemMarker ends the header line of a private key: "-----BEGIN RSA
// PRIVATE KEY-----".
const pemMarker = "PRIVATE KEY-----"

// pemHeaderMax bounds the header before the marker: the longest key type
// ("ENCRYPTED ", "OPENSSH ", "RSA ", "EC ", "DSA ") with room to spare.
const pemHeaderMax = 48

// pemState is a PEM candidate's progress through "[A-Z0-9 ]*PRIVATE
// KEY-----", whitespace, then pemBody base64 characters (line breaks
// allowed) after the "-----BEGIN " keyword. It takes one byte at a time
// in constant time: a candidate never rescans its tail, so a body of
// nothing but headers costs a few steps per byte, not a search of up to
// pemMaxTail bytes per byte and candidate.
type pemState struct {
	n    int16 // tail bytes seen
	body int16 // base64 body characters seen
	mi   uint8 // marker bytes matched, len(pemMarker) once it is found
}

// step takes the next tail byte b.
func (p *pemState) step(b byte) verdict {
	if p.n++; p.n > pemMaxTail {
		return reject
	}
	if int(p.mi) < len(pemMarker) {
		mi := pemNext(p.mi, b)
		switch {
		case int(mi) == len(pemMarker):
		case p.n > pemHeaderMax:
			return reject
		case mi > p.mi && mi > 1:
			// b continues the marker ("KEY-----" has dashes, headers do not).
		case b != ' ' && (b < 'A' || b > 'Z') && (b < '0' || b > '9'):
			return reject
		}
		p.mi = mi
		return more
	}
	switch {
	case b == '\n' || b == '\r' || b == ' ' || b == '\t':
	case csB64[b]:
		p.body++
	case b == '-':
		// The END line (or another header): the body is complete, and
		// shorter than pemBody, or it would have been accepted.
		return reject
	default:
		return reject
	}
	if p.body >= pemBody {
		return accept
	}
	return more
}

// end decides the candidate when the stream (or the decoded run) ends.
func (p *pemState) end() verdict {
	if int(p.mi) == len(pemMarker) && p.body >= pemBody {
		return accept
	}
	return reject
}

// pemNext advances a match of pemMarker that has mi bytes by b. The
// marker's first byte occurs nowhere else in it, so a mismatch falls back
// to matching b alone.
func pemNext(mi uint8, b byte) uint8 {
	if pemMarker[mi] == b {
		return mi + 1
	}
	if pemMarker[0] == b {
		return 1
	}
	return 0
}

// pemStep decides a whole tail at once (a decoded one): accept as soon as
// the body is long enough, as the streaming check does.
func pemStep(tail []byte, end bool) verdict {
	var p pemState
	for _, b := range tail {
		if v := p.step(b); v != more {
			return v
		}
	}
	if end {
		return p.end()
	}
	return more
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// containsFold reports whether s contains the lower-case ASCII word w,
// ignoring ASCII case.
func containsFold(s, w []byte) bool {
	for i := 0; i+len(w) <= len(s); i++ {
		j := 0
		for ; j < len(w); j++ {
			c := s[i+j]
			if c >= 'A' && c <= 'Z' {
				c += 'a' - 'A'
			}
			if c != w[j] {
				break
			}
		}
		if j == len(w) {
			return true
		}
	}
	return false
}
