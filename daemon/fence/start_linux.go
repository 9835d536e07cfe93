package fence

import (
	"io"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// Supported reports whether this platform can build a fence.
const Supported = true

// relayArg is the hidden first argument with which the init re-executes
// itself without capabilities (phase 2).
const relayArg = "__fence-relay"

// namespaces are every namespace a fence has of its own. CLONE_NEWUSER is
// there for root too: capabilities held inside are then worthless outside.
const namespaces = unix.CLONE_NEWUSER | unix.CLONE_NEWNS | unix.CLONE_NEWNET | unix.CLONE_NEWPID |
	unix.CLONE_NEWIPC | unix.CLONE_NEWUTS

// Start creates the fence's namespaces with its init inside, waiting for
// Run. stdin, stdout and stderr become the agent's. It fails with a
// *Error (cause and fix) when the kernel refuses the namespaces.
func Start(stdin io.Reader, stdout, stderr io.Writer, port int) (*Fence, error) {
	f, err := spawn("/proc/self/exe", stdin, stdout, stderr, sysProcAttr())
	if err != nil {
		return nil, diagnoseClone(err)
	}
	f.port = port
	return f, nil
}

// sysProcAttr maps the caller's uid and gid to themselves in a new user
// namespace and gives the init just the capabilities (in that namespace)
// it needs to mount, bring up loopback and drop its bounding set.
func sysProcAttr() *syscall.SysProcAttr {
	uid, gid := os.Getuid(), os.Getgid()
	a := &syscall.SysProcAttr{
		Cloneflags:  namespaces,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: uid, HostID: uid, Size: 1}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: gid, HostID: gid, Size: 1}},
		// setgroups stays denied, so the agent cannot drop a group that
		// denies it access to something.
		GidMappingsEnableSetgroups: false,
		Pdeathsig:                  syscall.SIGKILL, // exec gone: the fence goes
	}
	if uid != 0 {
		a.AmbientCaps = []uintptr{unix.CAP_SYS_ADMIN, unix.CAP_NET_ADMIN, unix.CAP_SETPCAP}
	}
	return a
}

// Run sends s to the init, which builds the fence and starts the agent.
// It returns once the agent runs, or with the reason the fence could not
// be built (the init has then exited, and nothing ran).
func (f *Fence) Run(s Spec) error {
	if err := f.send(s); err != nil {
		return err
	}
	return f.awaitReport()
}
