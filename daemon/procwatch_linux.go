package daemon

import (
	"context"
	"errors"

	"golang.org/x/sys/unix"
)

// waitProcessExit blocks until process pid exits (true) or either context
// is done (false). A pidfd names the process itself, so a recycled pid can
// never be mistaken for it once the fd is open.
func waitProcessExit(daemonCtx, sessCtx context.Context, pid int) bool {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return errors.Is(err, unix.ESRCH) // already gone: kill now
	}
	defer unix.Close(fd)
	return waitPidfd(daemonCtx, sessCtx, fd)
}
