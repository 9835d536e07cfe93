//go:build !linux

package proc

// Parent is not available without /proc; the agent-root check is
// Linux-only and does nothing here.
func Parent(pid int) (int, bool) { return 0, false }

// Start is not available without /proc.
func Start(pid int) (uint64, bool) { return 0, false }
