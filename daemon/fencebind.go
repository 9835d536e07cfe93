package daemon

import (
	"context"

	"github.com/tokfence/tokfence/capability"
	"github.com/tokfence/tokfence/daemon/proc"
)

// bindFence ties sess and its fence together: when the session ends
// (kill, RED, expiry) the fence is killed, every process in it with its
// init through the PID namespace; when the fence exits, the session ends.
func (d *Daemon) bindFence(sess *capability.Session, h *proc.Handle) {
	killed := make(chan struct{})
	stop := context.AfterFunc(sess.Context(), func() {
		h.Kill()
		close(killed)
	})
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		exited := h.Wait(d.runCtx, sess.Context())
		if !stop() {
			<-killed // the kill used the handle: close it only after
		}
		h.Close()
		if exited {
			if _, err := d.endSession(sess.ID, "fence exited"); err != nil {
				d.log.Error("kill session of exited fence", "session", sess.ID, "err", err)
			}
		}
	}()
}
