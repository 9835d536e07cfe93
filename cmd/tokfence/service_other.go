//go:build !linux && !darwin

package main

import (
	"errors"
	"runtime"
)

func serviceFiles(string, string) ([]serviceFile, string, error) {
	return nil, "", errors.New("install-service knows systemd (Linux) and launchd (macOS), not " + runtime.GOOS + "'s service manager; run `tokfence daemon` from your own")
}
