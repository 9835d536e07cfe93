package proc

import (
	"context"
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// Handle holds a process by pidfd: it names that process for as long as
// the handle is open, so a recycled pid can never be signalled or waited
// on in its place.
type Handle struct{ fd int }

// OpenChild takes hold of process pid, which must be a child of parent: a
// control client cannot make the daemon hold (and later kill) a process
// that is not one it started.
func OpenChild(pid, parent int) (*Handle, error) {
	if pid <= 0 {
		return nil, errors.New("a fenced grant needs the fence's pid")
	}
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return nil, fmt.Errorf("open fence process %d: %w", pid, err)
	}
	// The pidfd is open: from here on pid is that process or a dead one,
	// so the parent read below is its own.
	if pp, ok := Parent(pid); !ok || pp != parent {
		unix.Close(fd)
		return nil, fmt.Errorf("process %d is not a fence started by the caller (pid %d)", pid, parent)
	}
	return &Handle{fd: fd}, nil
}

// Kill sends SIGKILL to the held process (through a PID namespace's init,
// every process in it dies too). Call it before Close.
func (h *Handle) Kill() { _ = unix.PidfdSendSignal(h.fd, unix.SIGKILL, nil, 0) }

// Close lets go of the process.
func (h *Handle) Close() { unix.Close(h.fd) }

// Wait blocks until the held process exits (true) or either context is
// done (false).
func (h *Handle) Wait(daemonCtx, sessCtx context.Context) bool {
	return waitPidfd(daemonCtx, sessCtx, h.fd)
}

// WaitExit blocks until process pid exits (true) or either context is done
// (false). The pidfd opened first names the process itself, so a pid
// recycled after that can never be mistaken for it; a pid already gone
// counts as exited.
func WaitExit(daemonCtx, sessCtx context.Context, pid int) bool {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return errors.Is(err, unix.ESRCH) // already gone
	}
	defer unix.Close(fd)
	return waitPidfd(daemonCtx, sessCtx, fd)
}

// waitPidfd blocks until the process behind fd exits (true) or either
// context is done (false).
func waitPidfd(daemonCtx, sessCtx context.Context, fd int) bool {
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
