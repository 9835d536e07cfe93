package main

import (
	"os"
	"path/filepath"
)

// serviceFiles is the launchd agent for bin and what to run next. launchd
// starts the daemon at login; socket activation is not used on macOS, so
// socket is the daemon's to bind.
func serviceFiles(bin, socket string) ([]serviceFile, string, error) {
	home, err := os.UserHomeDir()
	if err != nil {
		return nil, "", err
	}
	path := filepath.Join(home, "Library", "LaunchAgents", launchdLabel+".plist")
	plist := launchdPlist(bin, filepath.Join(home, "Library", "Logs", "tokfence.log"))
	next := "   launchctl bootstrap gui/$(id -u) " + path + "\n" +
		"   launchctl bootout gui/$(id -u)/" + launchdLabel + "    # to stop it\n" +
		"   tail -f ~/Library/Logs/tokfence.log                    # its log"
	return []serviceFile{{path, plist}}, next, nil
}
