package daemon

import (
	"context"
	"net/http"
	"os"

	"github.com/tokfence/tokfence/daemon/api"
)

// Version is the tokfence version, set at build time with
// -ldflags "-X github.com/tokfence/tokfence/daemon.Version=...".
var Version = "dev"

func (d *Daemon) handleStatus(w http.ResponseWriter, r *http.Request) {
	st := api.Status{
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
		Prices:      d.prices.Describe(),
		Keys:        []string{},
		Keychain:    "ok",
	}
	grants := d.live.grants.snapshot(d.clock())
	for _, s := range d.sessions.List() {
		if grants[s.ID].Fence == api.FenceUnfenced {
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
