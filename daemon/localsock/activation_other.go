//go:build !linux

package localsock

import "net"

// activatedListener is Linux's socket activation (systemd); elsewhere
// the daemon always binds its own socket.
func activatedListener(string, int) (net.Listener, error) { return nil, nil }
