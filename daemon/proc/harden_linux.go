package proc

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// Harden makes the daemon's memory unreadable to other processes of the
// same uid: PR_SET_DUMPABLE=0 forbids ptrace attach and /proc/PID/mem by
// non-root, and a zero RLIMIT_CORE keeps keys out of core files.
func Harden() error {
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		return fmt.Errorf("prctl(PR_SET_DUMPABLE, 0): %w", err)
	}
	if err := unix.Setrlimit(unix.RLIMIT_CORE, &unix.Rlimit{}); err != nil {
		return fmt.Errorf("setrlimit(RLIMIT_CORE, 0): %w", err)
	}
	return nil
}
