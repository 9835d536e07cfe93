package localsock

import (
	"fmt"
	"net"

	"golang.org/x/sys/unix"
)

// readPeer reads LOCAL_PEERCRED (uid) and LOCAL_PEERPID (pid). The
// executable path needs proc_pidpath (cgo) and is left empty.
func readPeer(c net.Conn) (Peer, error) {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return Peer{}, fmt.Errorf("not a unix connection: %T", c)
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return Peer{}, err
	}
	var cred *unix.Xucred
	var pid int
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptXucred(int(fd), unix.SOL_LOCAL, unix.LOCAL_PEERCRED)
		if cerr == nil {
			pid, cerr = unix.GetsockoptInt(int(fd), unix.SOL_LOCAL, unix.LOCAL_PEERPID)
		}
	}); err != nil {
		return Peer{}, err
	}
	if cerr != nil {
		return Peer{}, fmt.Errorf("LOCAL_PEERCRED: %w", cerr)
	}
	return Peer{UID: int(cred.Uid), PID: pid, Transport: "unix"}, nil
}
