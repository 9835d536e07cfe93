// Package api is the control API's wire types: what the daemon's
// control routes take and return, and the one error shape every refusal
// has. It holds no behaviour, so the CLI's client side, the typed client
// (daemon/ctl) and the load harness depend on it without linking the
// proxy. Invariant: a type here is the JSON on the wire; changing a field's
// name or meaning is a protocol change.
package api

import (
	"fmt"
	"time"

	"github.com/tokfence/tokfence/capability"
)

// GrantRequest is the body of POST /v1/grant.
type GrantRequest struct {
	Agent       string   `json:"agent"`
	Providers   []string `json:"providers"`
	Models      []string `json:"models,omitempty"`
	Endpoints   []string `json:"endpoints,omitempty"`
	TTL         string   `json:"ttl,omitempty"` // Go duration; "" = 15m
	MaxRequests int64    `json:"max_requests,omitempty"`
	MaxTokens   int64    `json:"max_tokens,omitempty"`
	MaxSpendUSD float64  `json:"max_spend_usd,omitempty"`
	// BindPeer ties the session to the calling process: when it exits,
	// however it exits, the daemon kills the session. `tokfence exec` sets it.
	BindPeer bool `json:"bind_peer,omitempty"`
	// Fence is how `tokfence exec` runs the agent: FenceFenced (the daemon
	// then opens the session's agent socket and binds the fence) or
	// FenceUnfenced (--no-fence). Empty for a token minted by `grant`.
	Fence string `json:"fence,omitempty"`
	// FencePID is the fence init's pid, a child of the caller.
	FencePID int `json:"fence_pid,omitempty"`
	// FencePort is the forwarder's port inside the fence; the base URLs
	// in the reply point at it.
	FencePort int `json:"fence_port,omitempty"`
	// Exposed are hidden paths the user re-showed (fence.expose), for the
	// audit trail.
	Exposed []string `json:"exposed,omitempty"`
}

// How a session's agent runs, in GrantRequest.Fence and SessionInfo.Fence.
const (
	FenceFenced   = "fenced"
	FenceUnfenced = "unfenced"
)

// Grant is the reply of POST /v1/grant. Token is the capability; Env holds
// the variables an agent's SDKs read (key and base URL per provider).
type Grant struct {
	Token    string            `json:"token"`
	Session  string            `json:"session"`
	Agent    string            `json:"agent"`
	Expires  time.Time         `json:"expires"`
	Scope    capability.Scope  `json:"scope"`
	BaseURLs map[string]string `json:"base_urls,omitempty"`
	Env      map[string]string `json:"env"`
	// Canaries are decoy credentials, by env var name, that `tokfence exec`
	// plants in the agent's environment; any sighting turns the session RED.
	Canaries map[string]string `json:"canaries,omitempty"`
	TCP      string            `json:"tcp,omitempty"`
	// AgentSocket is a fenced session's agent socket on the host.
	AgentSocket string `json:"agent_socket,omitempty"`
}

// RenewRequest is the body of POST /v1/renew.
type RenewRequest struct {
	Session string `json:"session"`
	TTL     string `json:"ttl,omitempty"` // Go duration; "" = 15m
}

// SessionInfo is one row of GET /v1/sessions.
type SessionInfo struct {
	ID         string           `json:"id"`
	Agent      string           `json:"agent"`
	Scope      capability.Scope `json:"scope"`
	Created    time.Time        `json:"created"`
	Expires    time.Time        `json:"expires"`
	Requests   int64            `json:"requests"`
	Risk       string           `json:"risk"`
	RiskReason string           `json:"risk_reason,omitempty"`
	PeerPID    int              `json:"peer_pid,omitempty"`
	PeerExe    string           `json:"peer_exe,omitempty"`
	Restored   bool             `json:"restored,omitempty"`
	Tokens     int64            `json:"tokens"`
	SpendUSD   float64          `json:"spend_usd"`
	Unpriced   int64            `json:"unpriced_requests,omitempty"`
	// Fence is FenceFenced or FenceUnfenced for a session of `tokfence
	// exec`, empty for a token minted by `grant`.
	Fence string `json:"fence,omitempty"`
}

// KillRequest is the body of POST /v1/kill: exactly one of the fields.
type KillRequest struct {
	Session string `json:"session,omitempty"`
	Agent   string `json:"agent,omitempty"`
	All     bool   `json:"all,omitempty"`
}

// KillResult is the reply of POST /v1/kill.
type KillResult struct {
	Killed []string `json:"killed"`
	Epoch  uint64   `json:"epoch,omitempty"`
}

// Status is the reply of GET /v1/status.
type Status struct {
	Version   string    `json:"version"`
	PID       int       `json:"pid"`
	UID       int       `json:"uid"`
	Socket    string    `json:"socket"`
	StateDir  string    `json:"state_dir"`
	Config    string    `json:"config_file,omitempty"`
	Started   time.Time `json:"started"`
	Strict    bool      `json:"strict"`
	AllowRoot bool      `json:"allow_root"`
	UIDPolicy string    `json:"uid_policy"`
	TCP       string    `json:"tcp,omitempty"`
	// Keys are the providers whose key the daemon can use: in the key
	// index and readable (from its cache or the keychain).
	Keys []string `json:"keys"`
	// MissingKeys are in the key index (keys.json) but not readable: the
	// index outlives the keychain it indexes (a new keyring, such as the
	// throwaway one of `make run`, has none of its keys).
	MissingKeys []string `json:"missing_keys,omitempty"`
	Keychain    string   `json:"keychain"`
	Sessions    int      `json:"sessions"`
	// Unfenced counts the live sessions of `tokfence exec --no-fence`,
	// whose agents can reach everything the user can.
	Unfenced int    `json:"unfenced_sessions"`
	Policy   string `json:"policy"`
	// Prices names the price table in force, its date and overrides.
	Prices string `json:"prices"`
	// PolicyError is why the last policy reload failed; the previous
	// policy stays in force.
	PolicyError string `json:"policy_error,omitempty"`
}

// KeysReloaded is the reply of POST /v1/keys/reload.
type KeysReloaded struct {
	Providers []string `json:"providers"` // providers with a stored key
}

// AuditHashRequest is the body of POST /v1/audit-hash.
type AuditHashRequest struct {
	Value string `json:"value"`
}

// AuditHash is its reply: the value's fingerprint as the audit trail
// writes it (sensor hits, key changes).
type AuditHash struct {
	Fingerprint string `json:"fingerprint"`
}

// Error is the one error shape on the wire:
// {"error": {"message": ..., "type": ..., "code": ...}}.
type Error struct {
	Status int `json:"-"`
	// RetryAfter, on a 429, is when the refused request would go through.
	RetryAfter time.Duration `json:"-"`
	Message    string        `json:"message"`
	Type       string        `json:"type"`
	Code       string        `json:"code,omitempty"`
	Hint       string        `json:"hint,omitempty"`
}

func (e *Error) Error() string {
	return fmt.Sprintf("daemon answered %d %s: %s", e.Status, e.Type, e.Message)
}

// ErrorBody is how an Error travels: {"error": {...}}.
type ErrorBody struct {
	Error *Error `json:"error"`
}
