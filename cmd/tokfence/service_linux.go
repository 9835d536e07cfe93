package main

import (
	"os"
	"path/filepath"
)

// serviceFiles are the systemd user units for bin, serving socket, and
// what to run next.
func serviceFiles(bin, socket string) ([]serviceFile, string, error) {
	dir := os.Getenv("XDG_CONFIG_HOME")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return nil, "", err
		}
		dir = filepath.Join(home, ".config")
	}
	dir = filepath.Join(dir, "systemd", "user")
	service, sock := systemdUnits(bin, systemdSocketPath(socket, os.Getenv("XDG_RUNTIME_DIR")))
	files := []serviceFile{{filepath.Join(dir, "tokfence.service"), service}, {filepath.Join(dir, "tokfence.socket"), sock}}
	next := "   systemctl --user daemon-reload\n" +
		"   systemctl --user enable --now tokfence.socket    # start on first use; or tokfence.service to start at login\n" +
		"   journalctl --user -u tokfence                    # its log"
	return files, next, nil
}
