package policy

import "github.com/tokfence/tokfence/policy/pathglob"

// builtinRules are the last layer Decide consults, and the whole policy when
// there is no file. The floors (see applyFloor) sit on top of every layer;
// the RED rules are repeated here so that the table reads as the full story.
var builtinRules = []rule{
	{class: ClassProviderKey, to: Red, block: true, redact: true, minCount: 1,
		reason: "provider key in a body"},
	{class: ClassCapabilityToken, to: Red, block: true, redact: true, minCount: 1,
		reason: "capability token in a body"},
	{class: ClassCanary, to: Red, block: true, redact: true, minCount: 1,
		reason: "canary seen"},
	{kind: Canary, to: Red, block: true, redact: true, minCount: 1,
		reason: "canary seen"},
	// A secret of a known format (an AWS key, a PEM private key) leaving in a
	// request may be the agent exfiltrating the user's other secrets; record
	// it and raise the session. A file rule can add block = true.
	{kind: SensorHit, class: ClassFormat, direction: DirRequest, to: Yellow, minCount: 1},
	{kind: SensorHit, class: ClassFormat, direction: DirResponse, to: Yellow, minCount: 1},
	// A sensor class this package does not know yet is treated with caution.
	{kind: SensorHit, to: Yellow, minCount: 1},
	{kind: ScopeViolation, to: Yellow, minCount: 1},
	{kind: ScopeViolation, to: Orange, minCount: 3},
	{kind: AuthFailure, to: Orange, minCount: 5},
	{kind: LimitExceeded, to: Yellow, minCount: 10},
}

// defaultLimits are generous enough for an agent doing real work and tight
// enough in YELLOW and ORANGE to slow an agent that is draining its grant.
var defaultLimits = [numStates]Limit{
	Green:  {},                         // unlimited: the grant has its own limits
	Yellow: {PerMinute: 30, Burst: 10}, // a suspicious agent keeps working, slowly
	Orange: {PerMinute: 10, Burst: 5},  // enough to list models, little else
	Red:    {PerMinute: 10, Burst: 5},  // unused: RED is refused everything
}

// defaultReadOnly are the endpoints an ORANGE session may still call: model
// listing and lookup, which spend nothing and reveal nothing of the user's.
var defaultReadOnly = []string{"GET */models", "GET */models/*"}

// defaultCanaryEnv are names that look valuable and that no official SDK or
// CLI reads on its own, so a canary placed there is only ever sent by code
// that went looking for it. OPENAI_ADMIN_KEY is deliberately absent: recent
// openai-python reads it for its admin client.
var defaultCanaryEnv = []string{
	"ANTHROPIC_ADMIN_KEY",
	"AWS_ROOT_SECRET_ACCESS_KEY",
	"GITHUB_ADMIN_TOKEN",
	"STRIPE_LIVE_SECRET_KEY",
}

// sdkEnvNames are variables that official SDKs and CLIs read by themselves.
// A canary under one of these would be sent by ordinary, honest code and
// turn the session RED for nothing, so a policy file may not name them.
var sdkEnvNames = map[string]bool{
	"OPENAI_API_KEY": true, "OPENAI_ADMIN_KEY": true, "OPENAI_BASE_URL": true,
	"OPENAI_ORG_ID": true, "OPENAI_PROJECT_ID": true,
	"ANTHROPIC_API_KEY": true, "ANTHROPIC_AUTH_TOKEN": true, "ANTHROPIC_BASE_URL": true,
	"AWS_ACCESS_KEY_ID": true, "AWS_SECRET_ACCESS_KEY": true, "AWS_SESSION_TOKEN": true,
	"GOOGLE_API_KEY": true, "GEMINI_API_KEY": true, "GOOGLE_APPLICATION_CREDENTIALS": true,
	"AZURE_OPENAI_API_KEY": true, "MISTRAL_API_KEY": true, "GROQ_API_KEY": true,
	"COHERE_API_KEY": true, "CO_API_KEY": true, "OPENROUTER_API_KEY": true,
	"GITHUB_TOKEN": true, "GH_TOKEN": true, "HF_TOKEN": true,
}

var defaultPolicy = newDefault()

// Default returns the built-in policy that applies when there is no file.
// It is shared and immutable.
func Default() *Policy { return defaultPolicy }

func (p *Policy) orDefault() *Policy {
	if p == nil {
		return defaultPolicy
	}
	return p
}

func newDefault() *Policy {
	p := &Policy{
		source:    "built-in",
		limits:    defaultLimits,
		canaryEnv: defaultCanaryEnv,
		auditFrom: Yellow,
	}
	for _, s := range defaultReadOnly {
		e, err := pathglob.ParseEndpoint(s)
		if err != nil {
			panic("policy: bad built-in endpoint: " + err.Error())
		}
		p.readOnly = append(p.readOnly, e)
	}
	return p
}
