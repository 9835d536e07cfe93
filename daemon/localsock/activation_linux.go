package localsock

import (
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/tokfence/tokfence/daemon/hint"
	"golang.org/x/sys/unix"
)

// listenFDsStart is the first descriptor systemd passes (SD_LISTEN_FDS_START).
const listenFDsStart = 3

// activatedListener returns the listening socket systemd passed this
// process for path (socket activation: LISTEN_PID and LISTEN_FDS, as
// sd_listen_fds(3) reads them), or nil when it passed none. The caller has
// already checked path's directory and holds its lock, exactly as for a
// socket it binds itself; here the passed socket must be a listening Unix
// stream socket bound to path, whose file is a socket of uid's that no
// one else may open. Anything else is an error: a daemon that was meant
// to be activated and is not fails rather than serve the wrong socket.
// The LISTEN_* variables are removed so that no child inherits them.
func activatedListener(path string, uid int) (net.Listener, error) {
	pid, fds := os.Getenv("LISTEN_PID"), os.Getenv("LISTEN_FDS")
	for _, k := range []string{"LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"} {
		os.Unsetenv(k)
	}
	if pid == "" || pid != strconv.Itoa(os.Getpid()) {
		return nil, nil // not for us (sd_listen_fds ignores these too)
	}
	n, err := strconv.Atoi(fds)
	switch {
	case err != nil || n < 0:
		return nil, fmt.Errorf("socket activation: LISTEN_FDS=%q is not a count", fds)
	case n == 0:
		return nil, nil
	case n > 1:
		return nil, hint.Wrapf(fmt.Errorf("socket activation: systemd passed %d sockets; tokfence serves one", n),
			"give tokfence.socket exactly one ListenStream=, the daemon's socket path")
	}
	fd := listenFDsStart
	unix.CloseOnExec(fd)
	if err := checkActivatedFD(fd, path); err != nil {
		return nil, fmt.Errorf("socket activation: %w", err)
	}
	if err := checkActivatedFile(path, uid); err != nil {
		return nil, fmt.Errorf("socket activation: %w", err)
	}
	f := os.NewFile(uintptr(fd), "systemd socket "+path)
	defer f.Close() // FileListener holds a duplicate
	ln, err := net.FileListener(f)
	if err != nil {
		return nil, fmt.Errorf("socket activation: %w", err)
	}
	return ln, nil
}

// checkActivatedFD verifies that fd is a listening Unix stream socket
// bound to path.
func checkActivatedFD(fd int, path string) error {
	for _, o := range []struct {
		opt, want int
		what      string
	}{
		{unix.SO_DOMAIN, unix.AF_UNIX, "a Unix socket"},
		{unix.SO_TYPE, unix.SOCK_STREAM, "a stream socket"},
		{unix.SO_ACCEPTCONN, 1, "listening"},
	} {
		v, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, o.opt)
		if err != nil {
			return fmt.Errorf("descriptor %d: %w", fd, err)
		}
		if v != o.want {
			return hint.Wrapf(fmt.Errorf("descriptor %d is not %s", fd, o.what), "tokfence.socket wants ListenStream=%s", path)
		}
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return fmt.Errorf("descriptor %d: %w", fd, err)
	}
	ua, ok := sa.(*unix.SockaddrUnix)
	if !ok || filepath.Clean(ua.Name) != filepath.Clean(path) {
		name := "?"
		if ok {
			name = ua.Name
		}
		return hint.Wrapf(fmt.Errorf("the passed socket is bound to %q, but the daemon's socket is %s", name, path),
			"make ListenStream= in tokfence.socket and the daemon's socket setting (--socket, TOKFENCE_SOCKET, socket in the config) the same path")
	}
	return nil
}

// checkActivatedFile verifies path with Lstat: a socket, not a symlink,
// owned by uid, with no group or world permission (SocketMode=0600).
func checkActivatedFile(path string, uid int) error {
	fi, err := os.Lstat(path)
	if err != nil {
		return fmt.Errorf("check %s: %w", path, err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	switch {
	case fi.Mode()&fs.ModeSocket == 0:
		return fmt.Errorf("%s is not a socket", path)
	case !ok:
		return fmt.Errorf("cannot read the owner of %s", path)
	case int(st.Uid) != uid:
		return fmt.Errorf("socket %s is owned by uid %d, not %d", path, st.Uid, uid)
	case fi.Mode().Perm()&0o077 != 0:
		return hint.Wrapf(fmt.Errorf("socket %s has mode %#o; it must not be group- or world-accessible", path, fi.Mode().Perm()),
			"set SocketMode=0600 in tokfence.socket")
	}
	return nil
}
