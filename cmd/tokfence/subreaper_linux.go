package main

import "golang.org/x/sys/unix"

// becomeSubreaper makes orphaned descendants of the agent reparent to this
// process instead of init, so a double-forked agent process stays in the
// tree the daemon checks before serving its control API.
func becomeSubreaper() error {
	return unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
}
