//go:build !linux

package daemon

import "golang.org/x/sys/unix"

// harden turns core dumps off. Platforms other than Linux have no
// PR_SET_DUMPABLE; on macOS a same-uid debugger still needs the
// com.apple.security.get-task-allow entitlement, which release builds lack.
func harden() error {
	return unix.Setrlimit(unix.RLIMIT_CORE, &unix.Rlimit{})
}
