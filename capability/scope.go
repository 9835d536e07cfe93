package capability

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// Limits on a scope. They exist so that any valid scope fits in a token well
// under maxTokenSize, and so that matching a request costs a bounded amount.
const (
	maxProviders   = 16  // more providers than any install configures
	maxPatterns    = 32  // per list; a grant is a few globs, not a policy file
	maxPatternLen  = 128 // longest model id we know is ~60 bytes
	maxProviderLen = 32  // provider names are short table keys ("openai")
)

// Scope errors. Each wraps ErrScope, so callers can branch on the family or on
// the exact dimension that failed.
var (
	ErrScope         = errors.New("request outside token scope")
	ErrScopeProvider = fmt.Errorf("%w: provider", ErrScope)
	ErrScopeModel    = fmt.Errorf("%w: model", ErrScope)
	ErrScopeEndpoint = fmt.Errorf("%w: endpoint", ErrScope)
)

var (
	providerRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)
	methodRE   = regexp.MustCompile(`^(\*|[A-Z]+)$`)
)

// Scope is what a capability token allows. It is signed into the token, so it
// cannot be widened by its holder.
//
// Models and Endpoints hold globs in which '*' matches any run of bytes,
// including '/' (model ids such as "meta-llama/Llama-3*" contain slashes, and
// "POST /v1/chat/*" should cover nested paths); every other byte is literal.
// There are no character classes or escapes. An endpoint glob is
// "METHOD /path", where METHOD is an upper-case HTTP method or "*".
type Scope struct {
	Providers        []string `json:"providers"`
	Models           []string `json:"models,omitempty"`
	Endpoints        []string `json:"endpoints,omitempty"`
	MaxRequests      int64    `json:"max_requests,omitempty"`
	MaxTokens        int64    `json:"max_tokens,omitempty"`
	MaxSpendMicroUSD int64    `json:"max_spend_micro_usd,omitempty"`
}

// Validate reports whether s is well formed: at least one provider, bounded
// lists of printable globs, and no negative limits.
func (s Scope) Validate() error {
	if len(s.Providers) == 0 {
		return errors.New("scope: no providers")
	}
	if len(s.Providers) > maxProviders {
		return fmt.Errorf("scope: %d providers, at most %d", len(s.Providers), maxProviders)
	}
	for _, p := range s.Providers {
		if len(p) > maxProviderLen || !providerRE.MatchString(p) {
			return fmt.Errorf("scope: invalid provider name %q", p)
		}
	}
	if err := validatePatterns("model", s.Models); err != nil {
		return err
	}
	if err := validatePatterns("endpoint", s.Endpoints); err != nil {
		return err
	}
	for _, e := range s.Endpoints {
		method, p, ok := strings.Cut(e, " ")
		if !ok || !methodRE.MatchString(method) || (p != "*" && !strings.HasPrefix(p, "/")) {
			return fmt.Errorf("scope: endpoint %q is not \"METHOD /path\"", e)
		}
	}
	if s.MaxRequests < 0 || s.MaxTokens < 0 || s.MaxSpendMicroUSD < 0 {
		return errors.New("scope: negative limit")
	}
	return nil
}

func validatePatterns(kind string, pats []string) error {
	if len(pats) > maxPatterns {
		return fmt.Errorf("scope: %d %s globs, at most %d", len(pats), kind, maxPatterns)
	}
	for _, p := range pats {
		if p == "" || len(p) > maxPatternLen {
			return fmt.Errorf("scope: %s glob of length %d, want 1..%d", kind, len(p), maxPatternLen)
		}
		for i := 0; i < len(p); i++ {
			if p[i] < 0x20 || p[i] == 0x7f {
				return fmt.Errorf("scope: %s glob %q has a control byte", kind, p)
			}
		}
	}
	return nil
}

// Allow reports whether a request for model at "method path" on provider is
// inside s. It returns nil or an error wrapping ErrScopeProvider,
// ErrScopeModel or ErrScopeEndpoint. An empty model (a request that names
// none, such as GET /v1/models) passes the model check. path must be the
// request's decoded URL path; a path that is not absolute and clean (dot
// segments, doubled slashes, backslashes) is refused, so a glob such as
// "/v1/chat/*" cannot be escaped with "/v1/chat/../admin".
func (s Scope) Allow(provider, model, method, path string) error {
	if !contains(s.Providers, provider) {
		return fmt.Errorf("allow provider %q: %w", provider, ErrScopeProvider)
	}
	if model != "" && len(s.Models) > 0 && !matchAny(s.Models, model) {
		return fmt.Errorf("allow model %q: %w", model, ErrScopeModel)
	}
	if !cleanPath(path) {
		return fmt.Errorf("allow path %q: not a clean absolute path: %w", path, ErrScopeEndpoint)
	}
	if len(s.Endpoints) == 0 {
		return nil
	}
	for _, e := range s.Endpoints {
		m, p, _ := strings.Cut(e, " ")
		if (m == "*" || m == method) && glob(p, path) {
			return nil
		}
	}
	return fmt.Errorf("allow endpoint %q: %w", method+" "+path, ErrScopeEndpoint)
}

// cleanPath reports whether p is absolute and has no empty or dot segments
// and no backslash.
func cleanPath(p string) bool {
	if !strings.HasPrefix(p, "/") || strings.ContainsRune(p, '\\') {
		return false
	}
	segs := strings.Split(p[1:], "/")
	for i, seg := range segs {
		if seg == "." || seg == ".." || (seg == "" && i != len(segs)-1) {
			return false
		}
	}
	return true
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func matchAny(globs []string, s string) bool {
	for _, g := range globs {
		if glob(g, s) {
			return true
		}
	}
	return false
}

// glob reports whether s matches pattern, where '*' matches any run of bytes
// (including '/') and every other byte matches itself. It backtracks only to
// the last star, so it runs in O(len(pattern)*len(s)) at worst.
func glob(pattern, s string) bool {
	p, i := 0, 0
	star, mark := -1, 0
	for i < len(s) {
		switch {
		case p < len(pattern) && pattern[p] == '*':
			star, mark = p, i
			p++
		case p < len(pattern) && pattern[p] == s[i]:
			p++
			i++
		case star >= 0:
			p = star + 1
			mark++
			i = mark
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}
