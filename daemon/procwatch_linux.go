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
	for daemonCtx.Err() == nil && sessCtx.Err() == nil {
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, 200) // wake to notice the contexts
		if err != nil && !errors.Is(err, unix.EINTR) {
			return false
		}
		if n > 0 {
			return true
		}
	}
	return false
}
