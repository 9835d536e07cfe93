package daemon

import (
	"context"
	"net/http"
	"os"
	"time"
)

// Version is the tokfence version, set at build time with
// -ldflags "-X github.com/tokfence/tokfence/daemon.Version=...".
var Version = "dev"

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

func (d *Daemon) handleStatus(w http.ResponseWriter, r *http.Request) {
	st := Status{
		Version:     Version,
		PID:         os.Getpid(),
		UID:         d.uid,
		Socket:      d.cfg.Socket,
		StateDir:    d.cfg.StateDir,
		Config:      d.cfg.File,
		Started:     d.started,
		Strict:      true,
		AllowRoot:   d.cfg.AllowRoot,
		UIDPolicy:   d.uidPolicy(),
		TCP:         d.tcpAddr,
		Sessions:    len(d.sessions.List()),
		Policy:      d.policy().Source(),
		PolicyError: d.policyError(),
		Prices:      d.prices.describe(),
		Keys:        []string{},
		Keychain:    "ok",
	}
	grants := d.grants.snapshot(d.clock())
	for _, s := range d.sessions.List() {
		if grants[s.ID].Fence == FenceUnfenced {
			st.Unfenced++
		}
	}
	if err := d.keys.Probe(r.Context()); err != nil {
		st.Keychain = err.Error()
	}
	if idx := d.keys.Index(); idx != nil {
		entries, _, err := idx.List()
		if err != nil {
			st.Keychain = "key index unreadable: " + err.Error()
		}
		// One deadline for all the lookups, so that a keychain that hangs
		// delays status once, not once per key.
		ctx, cancel := context.WithTimeout(r.Context(), d.cfg.KeychainTimeout.Duration)
		defer cancel()
		for _, e := range entries {
			if _, err := d.providerKey(ctx, e.Provider); err != nil {
				st.MissingKeys = append(st.MissingKeys, e.Provider)
				continue
			}
			st.Keys = append(st.Keys, e.Provider)
		}
	}
	writeJSON(w, http.StatusOK, st)
}

func (d *Daemon) uidPolicy() string {
	if d.cfg.AllowRoot && d.uid != 0 {
		return "own uid and root"
	}
	return "own uid only"
}
