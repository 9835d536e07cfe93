package capability

import (
	"errors"
	"fmt"
	"regexp"
	"slices"

	"github.com/tokfence/tokfence/policy/pathglob"
)

// Limits on a scope. They exist so that any valid scope fits in a token well
// under maxTokenSize, and so that matching a request costs a bounded amount.
const (
	maxProviders   = 16 // more providers than any install configures
	maxPatterns    = 32 // per list; a grant is a few globs, not a policy file
	maxProviderLen = 32 // provider names are short table keys ("openai")
)

// Scope errors. Each wraps ErrScope, so callers can branch on the family or on
// the exact dimension that failed.
var (
	ErrScope         = errors.New("request outside token scope")
	ErrScopeProvider = fmt.Errorf("%w: provider", ErrScope)
	ErrScopeModel    = fmt.Errorf("%w: model", ErrScope)
	ErrScopeEndpoint = fmt.Errorf("%w: endpoint", ErrScope)
)

var providerRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)

// Scope is what a capability token allows. It is signed into the token, so it
// cannot be widened by its holder.
//
// Models holds globs and Endpoints "METHOD GLOB" entries, in the one glob
// language of package pathglob, the same as the policy file's: '*' matches
// any run of bytes, including '/', and every other byte is literal.
type Scope struct {
	Providers        []string `json:"providers"`
	Models           []string `json:"models,omitempty"`
	Endpoints        []string `json:"endpoints,omitempty"`
	MaxRequests      int64    `json:"max_requests,omitempty"`
	MaxTokens        int64    `json:"max_tokens,omitempty"`
	MaxSpendMicroUSD int64    `json:"max_spend_micro_usd,omitempty"`
}

// Validate reports whether s is well formed: at least one provider, bounded
// lists of globs valid under pathglob.Check and endpoints valid under
// pathglob.ParseEndpoint, and no negative limits. Mint and Verify both call
// it, so a token whose scope this version would refuse is refused.
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
	if len(s.Models) > maxPatterns || len(s.Endpoints) > maxPatterns {
		return fmt.Errorf("scope: %d model globs and %d endpoints, at most %d of each", len(s.Models), len(s.Endpoints), maxPatterns)
	}
	for _, m := range s.Models {
		if err := pathglob.Check(m); err != nil {
			return fmt.Errorf("scope: model %w", err)
		}
	}
	for _, e := range s.Endpoints {
		if _, err := pathglob.ParseEndpoint(e); err != nil {
			return fmt.Errorf("scope: %w", err)
		}
	}
	if s.MaxRequests < 0 || s.MaxTokens < 0 || s.MaxSpendMicroUSD < 0 {
		return errors.New("scope: negative limit")
	}
	return nil
}

// Allow reports whether a request for model at "method path" on provider is
// inside s. It returns nil or an error wrapping ErrScopeProvider,
// ErrScopeModel or ErrScopeEndpoint. An empty model (a request that names
// none, such as GET /v1/models) passes the model check. path must be the
// request's decoded URL path; a path that is not clean under
// pathglob.CheckPath (dot segments, doubled slashes, backslashes, path
// parameters, encoded separators) is refused whatever the globs say, so a
// glob such as "/v1/chat/*" cannot be escaped with "/v1/chat/../admin".
func (s Scope) Allow(provider, model, method, path string) error {
	if !contains(s.Providers, provider) {
		return fmt.Errorf("allow provider %q: %w", provider, ErrScopeProvider)
	}
	if model != "" && len(s.Models) > 0 && !slices.ContainsFunc(s.Models, func(g string) bool { return pathglob.Match(g, model) }) {
		return fmt.Errorf("allow model %q: %w", model, ErrScopeModel)
	}
	if err := pathglob.CheckPath(path); err != nil {
		return fmt.Errorf("allow path %q: %w: %w", path, err, ErrScopeEndpoint)
	}
	if len(s.Endpoints) == 0 {
		return nil
	}
	for _, e := range s.Endpoints {
		// An entry that does not parse allows nothing; Validate has
		// already refused it in any token that got this far.
		if ep, err := pathglob.ParseEndpoint(e); err == nil && ep.Match(method, path) {
			return nil
		}
	}
	return fmt.Errorf("allow endpoint %q: %w", method+" "+path, ErrScopeEndpoint)
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
