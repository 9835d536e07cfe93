//go:build !linux

package proc

import "golang.org/x/sys/unix"

// Harden turns core dumps off. Platforms other than Linux have no
// PR_SET_DUMPABLE; on macOS a same-uid debugger still needs the
// com.apple.security.get-task-allow entitlement, which release builds lack.
func Harden() error {
	return unix.Setrlimit(unix.RLIMIT_CORE, &unix.Rlimit{})
}
