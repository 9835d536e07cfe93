package daemon

import (
	"fmt"
	"net"
	"net/url"
	"sort"
	"strings"

	"github.com/tokfence/tokfence/keystore"
	"github.com/tokfence/tokfence/policy/pathglob"
)

// ProviderConfig is a provider entry in the config file: a new provider, or
// overrides for a built-in one (e.g. the Azure resource's base URL).
type ProviderConfig struct {
	BaseURL    string   `toml:"base_url"`
	AuthHeader string   `toml:"auth_header"`
	AuthScheme string   `toml:"auth_scheme"` // "Bearer", or "" for the raw key
	Paths      []string `toml:"paths"`       // allowed path prefixes upstream
	Headers    []string `toml:"headers"`     // provider headers to forward
	KeyEnv     string   `toml:"key_env"`     // env var an SDK reads the key from
	TokenEnv   string   `toml:"token_env"`   // env var a client reads a bearer token from (set too)
	BaseEnv    string   `toml:"base_env"`    // env var an SDK reads the base URL from
	BaseSuffix string   `toml:"base_suffix"` // appended to /{name} for BaseEnv
	// VersionPrefix is put before a path under none of Paths: the API
	// version that clients whose base URL ends in it leave out (the
	// Vercel AI SDK posts Anthropic's /v1/messages as /messages).
	VersionPrefix string `toml:"version_prefix"`
	// API is the API the provider speaks: "openai" (the default; most
	// providers are OpenAI-compatible), "anthropic" or "gemini". It
	// decides the shape of the daemon's error replies on its routes.
	API string `toml:"api"`
	// WebSocketPaths are the endpoints, below the provider's base, where
	// its API takes a WebSocket upgrade; an upgrade anywhere else is refused.
	WebSocketPaths []string `toml:"websocket_paths"`
	// ModelPath, if set, is the path segment after which the request path
	// names the model ("/models/" for Gemini's /v1beta/models/NAME:verb,
	// "/deployments/" for Azure's); else the model is read from the body.
	ModelPath string `toml:"model_path"`
	// StreamUsage marks an OpenAI-style API that takes
	// stream_options.include_usage: the daemon asks for the usage chunk of
	// streamed chats (and strips it if the agent did not) to meter them.
	StreamUsage bool `toml:"stream_usage"`
}

// The APIs a provider can speak, in ProviderConfig.API.
const (
	apiOpenAI    = "openai"
	apiAnthropic = "anthropic"
	apiGemini    = "gemini"
)

// Provider is one resolved entry of the provider table.
type Provider struct {
	Name       string
	Base       *url.URL // nil until configured (azure-openai)
	AuthHeader string
	AuthScheme string
	Paths      []string
	Headers    []string // forwarded besides the base set, in normHeader form
	KeyEnv     string
	TokenEnv   string
	BaseEnv    string
	BaseSuffix string
	API        string // apiOpenAI, apiAnthropic or apiGemini
	// VersionPrefix, if set, is put before a path under none of Paths.
	VersionPrefix string
	// WebSocketPaths are the exact paths that accept a WebSocket upgrade.
	WebSocketPaths []string
	// ModelPath, if set, is the path segment the model name follows.
	ModelPath string
	// StreamUsage: ask for streamed chats' usage (stream_options).
	StreamUsage bool
}

// builtinProviders is the provider table compiled in. The Paths allow-lists
// are the API roots each provider documents; anything else is refused.
var builtinProviders = map[string]ProviderConfig{
	"openai": {BaseURL: "https://api.openai.com", AuthHeader: "Authorization", AuthScheme: "Bearer",
		Paths: []string{"/v1/"}, Headers: []string{"OpenAI-Organization", "OpenAI-Project", "OpenAI-Beta"},
		KeyEnv: "OPENAI_API_KEY", BaseEnv: "OPENAI_BASE_URL", BaseSuffix: "/v1", StreamUsage: true,
		WebSocketPaths: []string{"/v1/responses"}}, // the Responses API's WebSocket mode (Codex CLI)
	"anthropic": {BaseURL: "https://api.anthropic.com", AuthHeader: "x-api-key",
		Paths: []string{"/v1/"}, Headers: []string{"anthropic-version", "anthropic-beta"},
		// Claude Code asks before using an ANTHROPIC_API_KEY it has not
		// seen (each session's token is new); ANTHROPIC_AUTH_TOKEN it
		// uses as is. The SDKs read both and send them as one token.
		KeyEnv: "ANTHROPIC_API_KEY", TokenEnv: "ANTHROPIC_AUTH_TOKEN", BaseEnv: "ANTHROPIC_BASE_URL", API: apiAnthropic,
		// The official SDK and Claude Code append /v1/messages to
		// ANTHROPIC_BASE_URL, the Vercel AI SDK /messages to a base it
		// expects to end in /v1: both reach /v1/messages.
		VersionPrefix: "/v1"},
	"gemini": {BaseURL: "https://generativelanguage.googleapis.com", AuthHeader: "x-goog-api-key",
		Paths: []string{"/v1beta/", "/v1/", "/upload/"}, Headers: []string{"x-goog-api-client"},
		KeyEnv: "GEMINI_API_KEY", BaseEnv: "GOOGLE_GEMINI_BASE_URL", API: apiGemini, ModelPath: "/models/"},
	"mistral": {BaseURL: "https://api.mistral.ai", AuthHeader: "Authorization", AuthScheme: "Bearer",
		Paths: []string{"/v1/"}, KeyEnv: "MISTRAL_API_KEY", BaseEnv: "MISTRAL_BASE_URL", BaseSuffix: "/v1"},
	"groq": {BaseURL: "https://api.groq.com", AuthHeader: "Authorization", AuthScheme: "Bearer",
		Paths: []string{"/openai/v1/"}, KeyEnv: "GROQ_API_KEY", BaseEnv: "GROQ_BASE_URL", StreamUsage: true},
	"openrouter": {BaseURL: "https://openrouter.ai", AuthHeader: "Authorization", AuthScheme: "Bearer",
		Paths: []string{"/api/v1/"}, Headers: []string{"HTTP-Referer", "X-Title"},
		KeyEnv: "OPENROUTER_API_KEY", BaseEnv: "OPENROUTER_BASE_URL", BaseSuffix: "/api/v1"},
	"deepseek": {BaseURL: "https://api.deepseek.com", AuthHeader: "Authorization", AuthScheme: "Bearer",
		Paths: []string{"/v1/", "/chat/", "/models", "/beta/"}, KeyEnv: "DEEPSEEK_API_KEY", BaseEnv: "DEEPSEEK_BASE_URL", StreamUsage: true},
	"xai": {BaseURL: "https://api.x.ai", AuthHeader: "Authorization", AuthScheme: "Bearer",
		Paths: []string{"/v1/"}, KeyEnv: "XAI_API_KEY", BaseEnv: "XAI_BASE_URL", BaseSuffix: "/v1", StreamUsage: true},
	"together": {BaseURL: "https://api.together.xyz", AuthHeader: "Authorization", AuthScheme: "Bearer",
		Paths: []string{"/v1/"}, KeyEnv: "TOGETHER_API_KEY", BaseEnv: "TOGETHER_BASE_URL", BaseSuffix: "/v1", StreamUsage: true},
	// Azure has one host per resource; it stays unusable until the config
	// names it: [providers.azure-openai] base_url = "https://NAME.openai.azure.com".
	"azure-openai": {AuthHeader: "api-key", Paths: []string{"/openai/"},
		KeyEnv: "AZURE_OPENAI_API_KEY", BaseEnv: "AZURE_OPENAI_ENDPOINT", ModelPath: "/deployments/"},
}

// reservedNames cannot be providers: they are the control API's roots.
var reservedNames = map[string]bool{"v1": true, "v2": true, "tokfence": true, "healthz": true}

// Providers is the resolved provider table.
type Providers map[string]*Provider

// BuildProviders merges the built-in table with the config's entries and
// validates every result.
func BuildProviders(cfg map[string]ProviderConfig) (Providers, error) {
	merged := map[string]ProviderConfig{}
	for k, v := range builtinProviders {
		merged[k] = v
	}
	for name, over := range cfg {
		merged[name] = overlay(merged[name], over)
	}
	out := Providers{}
	for name, pc := range merged {
		p, err := resolveProvider(name, pc)
		if err != nil {
			return nil, err
		}
		out[name] = p
	}
	return out, nil
}

func overlay(base, over ProviderConfig) ProviderConfig {
	if over.BaseURL != "" {
		base.BaseURL = over.BaseURL
	}
	if over.AuthHeader != "" {
		base.AuthHeader = over.AuthHeader
		base.AuthScheme = over.AuthScheme
	}
	if over.Paths != nil {
		base.Paths = over.Paths
	}
	if over.WebSocketPaths != nil {
		base.WebSocketPaths = over.WebSocketPaths
	}
	base.Headers = append(base.Headers, over.Headers...)
	base.StreamUsage = base.StreamUsage || over.StreamUsage
	for _, p := range []struct {
		dst *string
		v   string
	}{{&base.KeyEnv, over.KeyEnv}, {&base.TokenEnv, over.TokenEnv}, {&base.BaseEnv, over.BaseEnv}, {&base.BaseSuffix, over.BaseSuffix}, {&base.API, over.API}, {&base.VersionPrefix, over.VersionPrefix}, {&base.ModelPath, over.ModelPath}} {
		if p.v != "" {
			*p.dst = p.v
		}
	}
	return base
}

func resolveProvider(name string, pc ProviderConfig) (*Provider, error) {
	if err := keystore.ValidateName(name); err != nil || reservedNames[name] {
		return nil, fmt.Errorf("config: provider name %q is invalid or reserved", name)
	}
	p := &Provider{Name: name, AuthHeader: pc.AuthHeader, AuthScheme: pc.AuthScheme, Paths: pc.Paths,
		KeyEnv: pc.KeyEnv, TokenEnv: pc.TokenEnv, BaseEnv: pc.BaseEnv, BaseSuffix: pc.BaseSuffix, API: pc.API, VersionPrefix: pc.VersionPrefix,
		WebSocketPaths: pc.WebSocketPaths, ModelPath: pc.ModelPath, StreamUsage: pc.StreamUsage}
	switch p.API {
	case "":
		p.API = apiOpenAI
	case apiOpenAI, apiAnthropic, apiGemini:
	default:
		return nil, fmt.Errorf("config: provider %s: api %q: want %q, %q or %q", name, p.API, apiOpenAI, apiAnthropic, apiGemini)
	}
	for _, h := range pc.Headers {
		p.Headers = append(p.Headers, normHeader(h))
	}
	if p.AuthHeader == "" || strings.ContainsAny(p.AuthHeader, " :\r\n") {
		return nil, fmt.Errorf("config: provider %s: auth_header %q is missing or invalid", name, p.AuthHeader)
	}
	if len(p.Paths) == 0 {
		p.Paths = []string{"/"}
	}
	for _, pre := range p.Paths {
		if err := pathglob.CheckPath(pre); err != nil {
			return nil, fmt.Errorf("config: provider %s: path prefix %q must be a clean path such as /v1/: %w", name, pre, err)
		}
	}
	if v := p.VersionPrefix; v != "" && (pathglob.CheckPath(v) != nil || strings.HasSuffix(v, "/") || !allowedPath(p, v+"/x")) {
		return nil, fmt.Errorf("config: provider %s: version_prefix %q must be a path such as /v1, under one of its paths", name, v)
	}
	if m := p.ModelPath; m != "" && (!strings.HasPrefix(m, "/") || !strings.HasSuffix(m, "/") || len(m) < 3 || strings.Contains(m, "..")) {
		return nil, fmt.Errorf("config: provider %s: model_path %q must be a segment such as /models/", name, m)
	}
	for _, ws := range p.WebSocketPaths {
		if !allowedPath(p, ws) || pathglob.CheckPath(ws) != nil {
			return nil, fmt.Errorf("config: provider %s: websocket path %q must be a clean path under its paths", name, ws)
		}
	}
	if pc.BaseURL == "" {
		return p, nil
	}
	u, err := url.Parse(pc.BaseURL)
	if err != nil {
		return nil, fmt.Errorf("config: provider %s: base_url: %w", name, err)
	}
	if err := checkBaseURL(u); err != nil {
		return nil, fmt.Errorf("config: provider %s: %w", name, err)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	p.Base = u
	return p, nil
}

// checkBaseURL allows https anywhere and plain http only to loopback (tests,
// and local model servers such as Ollama): a key sent over plain http to a
// remote host is a key published.
func checkBaseURL(u *url.URL) error {
	if u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("base_url %q must be scheme://host[:port][/path] with no credentials, query or fragment", u.Redacted())
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if isLoopbackHost(u.Hostname()) {
			return nil
		}
		return fmt.Errorf("base_url %q: plain http is allowed only to loopback", u.Redacted())
	}
	return fmt.Errorf("base_url %q: scheme must be https", u.Redacted())
}

func isLoopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// Names returns the provider names, sorted.
func (ps Providers) Names() []string {
	out := make([]string, 0, len(ps))
	for n := range ps {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}
