package daemon

import (
	"context"
	"errors"
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/tokfence/tokfence/capability"
)

// fenceHandle is a fence's init, held by pidfd so that a recycled pid can
// never be signalled in its place.
type fenceHandle struct{ fd int }

// openFence takes hold of the fence init pid, which must be a child of the
// exec process parent that asked for the grant: a control client cannot
// make the daemon kill a process that is not its own fence.
func openFence(pid, parent int) (*fenceHandle, error) {
	if pid <= 0 {
		return nil, errors.New("a fenced grant needs the fence's pid")
	}
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return nil, fmt.Errorf("open fence process %d: %w", pid, err)
	}
	// The pidfd is open: from here on pid is that process or a dead one,
	// so the parent read below is the fence's own.
	if pp, ok := procParent(pid); !ok || pp != parent {
		unix.Close(fd)
		return nil, fmt.Errorf("process %d is not a fence started by the caller (pid %d)", pid, parent)
	}
	return &fenceHandle{fd: fd}, nil
}

func (h *fenceHandle) close() { unix.Close(h.fd) }

// bindFence ties sess and its fence together: when the session ends
// (kill, RED, expiry) the fence is killed, every process in it with its
// init through the PID namespace; when the fence exits, the session ends.
func (d *Daemon) bindFence(sess *capability.Session, h *fenceHandle) {
	killed := make(chan struct{})
	stop := context.AfterFunc(sess.Context(), func() {
		_ = unix.PidfdSendSignal(h.fd, unix.SIGKILL, nil, 0)
		close(killed)
	})
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		exited := waitPidfd(d.runCtx, sess.Context(), h.fd)
		if !stop() {
			<-killed // the kill used the fd: close it only after
		}
		unix.Close(h.fd)
		if exited {
			if _, err := d.endSession(sess.ID, "fence exited"); err != nil {
				d.log.Error("kill session of exited fence", "session", sess.ID, "err", err)
			}
		}
	}()
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
