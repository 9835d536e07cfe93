//go:build !linux

package daemon

import (
	"context"
	"errors"
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/tokfence/tokfence/capability"
)

// fenceHandle is a fence's sandboxed process, by pid: without pidfds a
// recycled pid could in principle be signalled in its place.
type fenceHandle struct{ pid int }

func openFence(pid, parent int) (*fenceHandle, error) {
	if pid <= 0 {
		return nil, errors.New("a fenced grant needs the fence's pid")
	}
	if err := unix.Kill(pid, 0); err != nil {
		return nil, fmt.Errorf("fence process %d: %w", pid, err)
	}
	return &fenceHandle{pid: pid}, nil
}

func (h *fenceHandle) close() {}

// bindFence kills the fence when sess ends and ends sess when the fence
// exits.
func (d *Daemon) bindFence(sess *capability.Session, h *fenceHandle) {
	stop := context.AfterFunc(sess.Context(), func() { _ = unix.Kill(h.pid, unix.SIGKILL) })
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		if waitProcessExit(d.runCtx, sess.Context(), h.pid) {
			stop()
			if _, err := d.endSession(sess.ID, "fence exited"); err != nil {
				d.log.Error("kill session of exited fence", "session", sess.ID, "err", err)
			}
		}
	}()
}
