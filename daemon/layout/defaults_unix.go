//go:build !darwin

package layout

import (
	"os"
	"path/filepath"
)

// DefaultSocketPath returns $XDG_RUNTIME_DIR/tokfence/tokfence.sock, or
// ~/.tokfence/run/tokfence.sock when there is no runtime dir.
func DefaultSocketPath() string {
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
		return filepath.Join(d, "tokfence", "tokfence.sock")
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".tokfence", "run", "tokfence.sock")
}

// DefaultStateDir returns $XDG_STATE_HOME/tokfence (~/.local/state/tokfence).
func DefaultStateDir() string {
	d := os.Getenv("XDG_STATE_HOME")
	if d == "" {
		home, _ := os.UserHomeDir()
		d = filepath.Join(home, ".local", "state")
	}
	return filepath.Join(d, "tokfence")
}
