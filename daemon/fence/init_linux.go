package fence

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"strconv"

	"golang.org/x/sys/unix"
)

// The init's file descriptors. Phase 1 receives specFD and statusFD from
// Start; it hands phase 2 the listener, the status pipe and the Spec.
const (
	specFD     = 3
	statusFD   = 4
	listenFD   = 3
	relayStFD  = 4
	relaySpcFD = 5
)

// MaybeInit runs the fence's init when this process was started as one,
// and then never returns. main calls it before anything else.
func MaybeInit() {
	if len(os.Args) < 2 {
		return
	}
	switch os.Args[1] {
	case initArg:
		os.Exit(initMain())
	case relayArg:
		os.Exit(relayMain())
	}
}

// initMain is phase 1, pid 1 of the fence with capabilities in its user
// namespace: it builds the view, brings up loopback, listens, then drops
// every capability and re-executes itself as phase 2, so that no thread of
// the process that lives beside the agent holds any.
func initMain() int {
	status := os.NewFile(statusFD, "status")
	fail := func(r *report) int {
		_ = json.NewEncoder(status).Encode(r)
		return 125
	}
	_ = unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0) // the agent may not ptrace or read us
	var s Spec
	if err := json.NewDecoder(io.LimitReader(os.NewFile(specFD, "spec"), 16<<20)).Decode(&s); err != nil {
		return fail(&report{Error: "read the fence spec: " + err.Error()})
	}
	if err := s.Validate(); err != nil {
		return fail(&report{Error: err.Error()})
	}
	if r := buildView(&s); r != nil {
		return fail(r)
	}
	if err := loopbackUp(); err != nil {
		return fail(diagnoseSetup("bring up the fence's loopback interface", err))
	}
	ln, err := listenFile(s.Port)
	if err != nil {
		return fail(diagnoseSetup("listen on the fence's 127.0.0.1", err))
	}
	spec, err := specFile(&s)
	if err != nil {
		return fail(diagnoseSetup("hand the spec to the relay", err))
	}
	return fail(execRelay(ln, status, spec))
}

// loopbackUp sets the fence's lo interface up: a new network namespace
// starts with it down.
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return err
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	return unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr)
}

// listenFile listens on 127.0.0.1:port and returns the socket as a file
// that survives exec.
func listenFile(port int) (*os.File, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return nil, err
	}
	defer ln.Close()
	return ln.(*net.TCPListener).File()
}

// specFile puts the Spec in a memory file for phase 2.
func specFile(s *Spec) (*os.File, error) {
	fd, err := unix.MemfdCreate("tokfence-fence-spec", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), "spec")
	if err := json.NewEncoder(f).Encode(s); err != nil {
		f.Close()
		return nil, err
	}
	_, err = f.Seek(0, io.SeekStart)
	return f, err
}

// execRelay drops every capability of this thread (bounding set,
// inheritable, ambient), sets no_new_privs and re-executes the binary as
// phase 2 with the three files at fds 3, 4 and 5. It returns only on error.
func execRelay(ln, status, spec *os.File) *report {
	runtime.LockOSThread() // the drops below are this thread's; exec is from it too
	for i, f := range []*os.File{ln, status, spec} {
		if err := passFD(int(f.Fd()), listenFD+i); err != nil {
			return diagnoseSetup("pass files to the relay", err)
		}
	}
	// Nothing else crosses the exec: every other descriptor closes there.
	if err := unix.CloseRange(relaySpcFD+1, ^uint(0), unix.CLOSE_RANGE_CLOEXEC); err != nil {
		return diagnoseSetup("close the init's other files", err)
	}
	if err := dropCapabilities(); err != nil {
		return diagnoseSetup("drop the init's capabilities", err)
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return diagnoseSetup("set no_new_privs", err)
	}
	err := unix.Exec("/proc/self/exe", []string{"tokfence-fence", relayArg}, []string{})
	return diagnoseSetup("re-execute the fence's init without capabilities", err)
}

// passFD puts fd at target with close-on-exec off. fds 3 and 4 are taken
// before any file is opened, so no later file sits on a lower target.
func passFD(fd, target int) error {
	if fd == target {
		_, err := unix.FcntlInt(uintptr(fd), unix.F_SETFD, 0)
		return err
	}
	return unix.Dup3(fd, target, 0)
}

// dropCapabilities empties this thread's bounding set, clears its ambient
// set and sets its capabilities to none: after the next execve the
// process holds no capability, even as uid 0 of the namespace.
func dropCapabilities() error {
	for c := 0; c <= unix.CAP_LAST_CAP; c++ {
		if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0); err != nil && err != unix.EINVAL {
			return fmt.Errorf("drop capability %d from the bounding set: %w", c, err)
		}
	}
	if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil {
		return fmt.Errorf("clear ambient capabilities: %w", err)
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return fmt.Errorf("clear capabilities: %w", err)
	}
	return nil
}
