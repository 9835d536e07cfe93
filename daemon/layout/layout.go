// Package layout owns where Tokfence keeps things: the default socket,
// state directory and config file, and the name of every file in the
// state directory. The daemon and the CLI both find a file through a
// StateDir method, so a name is spelled once.
//
// Invariant: everything in a StateDir is the daemon's (it is created
// 0700, checked before use and locked while a daemon runs); only the key
// index is also written by the CLI, under its own lock (keystore.Index).
package layout

import (
	"os"
	"path/filepath"
)

// StateDir is a daemon's state directory.
type StateDir string

// Audit is the audit trail's directory (hash-chained JSON Lines).
func (s StateDir) Audit() string { return s.join("audit") }

// KeyIndex is the index of which providers have a key in the keychain
// (names and times only), written by `tokfence key set` and `key rm`.
func (s StateDir) KeyIndex() string { return s.join("keys.json") }

// Grants is the journal of live sessions' grants, for kill and sessions
// after a restart (no tokens).
func (s StateDir) Grants() string { return s.join("grants.jsonl") }

// LegacyGrants is where the grants were kept, whole, before the journal;
// a daemon that finds it takes it into the journal and removes it.
func (s StateDir) LegacyGrants() string { return s.join("sessions.json") }

// Revocations is the revocation list, anchored in the keychain.
func (s StateDir) Revocations() string { return s.join("revocations.json") }

// InstallID is this install's id, the audience of its tokens.
func (s StateDir) InstallID() string { return s.join("install-id") }

func (s StateDir) join(name string) string { return filepath.Join(string(s), name) }

// DefaultConfigFile returns $XDG_CONFIG_HOME/tokfence/config.toml.
func DefaultConfigFile() string {
	dir := os.Getenv("XDG_CONFIG_HOME")
	if dir == "" {
		home, _ := os.UserHomeDir()
		dir = filepath.Join(home, ".config")
	}
	return filepath.Join(dir, "tokfence", "config.toml")
}
