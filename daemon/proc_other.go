//go:build !linux

package daemon

// procParent is not available without /proc; the agent-root check is
// Linux-only and does nothing here.
func procParent(pid int) (int, bool) { return 0, false }

// procStart is not available without /proc.
func procStart(pid int) (uint64, bool) { return 0, false }
