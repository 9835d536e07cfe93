package localsock

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// ErrAlreadyRunning means another daemon holds the socket or the state
// directory.
var ErrAlreadyRunning = errors.New("a tokfence daemon is already running")

// ErrUnsafeDir means a socket or state directory failed the ownership and
// permission checks.
var ErrUnsafeDir = errors.New("unsafe directory")

// SecureDir creates dir (0700) if it is missing and then verifies it with
// Lstat: it must be a real directory, not a symlink, owned by uid, and
// neither group- nor world-accessible. The directory is the real guard of
// the socket: a socket's own mode is not honoured on every platform.
func SecureDir(dir string, uid int) error {
	if err := os.MkdirAll(filepath.Dir(dir), 0o700); err != nil {
		return fmt.Errorf("create %s: %w", filepath.Dir(dir), err)
	}
	if err := os.Mkdir(dir, 0o700); err == nil {
		// Mkdir obeys the umask; set the mode we mean.
		if err := os.Chmod(dir, 0o700); err != nil {
			return fmt.Errorf("chmod %s: %w", dir, err)
		}
	} else if !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("check %s: %w", dir, err)
	}
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		return fmt.Errorf("%w: %s is a symlink", ErrUnsafeDir, dir)
	case !fi.IsDir():
		return fmt.Errorf("%w: %s is not a directory", ErrUnsafeDir, dir)
	case fi.Mode().Perm()&0o077 != 0:
		return fmt.Errorf("%w: %s has mode %#o; it must not be group- or world-accessible (chmod 700 it)", ErrUnsafeDir, dir, fi.Mode().Perm())
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fmt.Errorf("%w: cannot read the owner of %s", ErrUnsafeDir, dir)
	}
	if int(st.Uid) != uid {
		return fmt.Errorf("%w: %s is owned by uid %d, not %d", ErrUnsafeDir, dir, st.Uid, uid)
	}
	return nil
}

// Lock is the flock held on a directory's lock file (the socket's,
// and the state directory's) for the daemon's lifetime, so two daemons can
// never both believe they own the path or the state.
type Lock struct {
	f         *os.File
	activated bool // the socket is systemd's (socket activation): it outlives us
}

// Activated reports whether the socket the lock guards was passed by the
// service manager (socket activation) rather than bound here: it must
// then stay when the daemon stops.
func (l *Lock) Activated() bool { return l.activated }

func (l *Lock) Release() { _ = l.f.Close() }

// CheckSunPath refuses a socket path the kernel would truncate.
func CheckSunPath(path string) error {
	if len(path) >= SunPathMax {
		return fmt.Errorf("socket path %s is %d bytes; this platform allows %d (pick a shorter --socket)", path, len(path), SunPathMax-1)
	}
	return nil
}

// ListenUnix prepares path's directory, takes the lock, clears a stale
// socket and binds a 0600 socket whatever the process umask.
func ListenUnix(path string, uid int) (net.Listener, *Lock, error) {
	if err := CheckSunPath(path); err != nil {
		return nil, nil, err
	}
	dir := filepath.Dir(path)
	if err := SecureDir(dir, uid); err != nil {
		return nil, nil, err
	}
	lock, err := LockDir(dir)
	if err != nil {
		return nil, nil, err
	}
	// A socket systemd passed must pass what ours would: the directory
	// check and the lock above, and its own checks in activatedListener.
	if ln, err := activatedListener(path, uid); ln != nil || err != nil {
		if err != nil {
			lock.Release()
			return nil, nil, err
		}
		lock.activated = true
		return ln, lock, nil
	}
	if err := clearStale(path); err != nil {
		lock.Release()
		return nil, nil, err
	}
	// The umask is process-wide; this runs once at start, before any other
	// goroutine creates files.
	old := unix.Umask(0o177)
	ln, err := net.Listen("unix", path)
	unix.Umask(old)
	if err != nil {
		lock.Release()
		return nil, nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		lock.Release()
		return nil, nil, fmt.Errorf("chmod socket: %w", err)
	}
	return ln, lock, nil
}

func LockDir(dir string) (*Lock, error) {
	f, err := os.OpenFile(filepath.Join(dir, "tokfence.lock"), os.O_CREATE|os.O_RDWR|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock file: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, ErrAlreadyRunning
		}
		return nil, fmt.Errorf("lock %s: %w", dir, err)
	}
	return &Lock{f: f}, nil
}

// clearStale removes a leftover socket at path after dialling it: a live
// answer means another daemon (one that does not hold our lock, e.g. an older
// build) is serving, and we refuse rather than steal its path.
func clearStale(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("check %s: %w", path, err)
	}
	if fi.Mode()&fs.ModeSocket == 0 {
		return fmt.Errorf("%s exists and is not a socket; refusing to replace it", path)
	}
	if c, err := net.DialTimeout("unix", path, 500*time.Millisecond); err == nil {
		c.Close()
		return ErrAlreadyRunning
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove stale socket: %w", err)
	}
	return nil
}
