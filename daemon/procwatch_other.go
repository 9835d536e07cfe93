//go:build !linux

package daemon

import (
	"context"
	"errors"
	"time"

	"golang.org/x/sys/unix"
)

// waitProcessExit polls kill(pid, 0) until the process is gone (true) or
// either context is done (false).
func waitProcessExit(daemonCtx, sessCtx context.Context, pid int) bool {
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
