package layout

import (
	"os"
	"path/filepath"
)

func appSupport() string {
	home, _ := os.UserHomeDir()
	return filepath.Join(home, "Library", "Application Support", "tokfence")
}

// DefaultSocketPath returns ~/Library/Application Support/tokfence/run/tokfence.sock.
func DefaultSocketPath() string { return filepath.Join(appSupport(), "run", "tokfence.sock") }

// DefaultStateDir returns ~/Library/Application Support/tokfence/state.
func DefaultStateDir() string { return filepath.Join(appSupport(), "state") }
