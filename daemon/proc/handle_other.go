//go:build !linux

package proc

import (
	"context"
	"errors"
	"fmt"
	"time"

	"golang.org/x/sys/unix"
)

// Handle holds a process by pid. Without pidfds (macOS) a recycled pid
// is a risk this platform's fence accepts: the window is the process's
// exit to the daemon's next poll, 200 ms at most.
type Handle struct{ pid int }

// OpenChild takes hold of process pid. Without /proc the parent cannot be
// checked here; the grant's caller is still the only one told the pid.
func OpenChild(pid, parent int) (*Handle, error) {
	if pid <= 0 {
		return nil, errors.New("a fenced grant needs the fence's pid")
	}
	if err := unix.Kill(pid, 0); err != nil {
		return nil, fmt.Errorf("fence process %d: %w", pid, err)
	}
	return &Handle{pid: pid}, nil
}

// Kill sends SIGKILL to the held process.
func (h *Handle) Kill() { _ = unix.Kill(h.pid, unix.SIGKILL) }

// Close lets go of the process.
func (h *Handle) Close() {}

// Wait blocks until the held process exits (true) or either context is
// done (false).
func (h *Handle) Wait(daemonCtx, sessCtx context.Context) bool {
	return WaitExit(daemonCtx, sessCtx, h.pid)
}

// WaitExit polls until process pid is gone (true) or either context is
// done (false).
func WaitExit(daemonCtx, sessCtx context.Context, pid int) bool {
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		if err := unix.Kill(pid, 0); errors.Is(err, unix.ESRCH) {
			return true
		}
		select {
		case <-daemonCtx.Done():
			return false
		case <-sessCtx.Done():
			return false
		case <-t.C:
		}
	}
}
