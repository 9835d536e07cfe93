package fence

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// hiddenFile is the empty, unreadable file bound over each hidden file.
// It is made in the fence's own /run and unlinked once bound.
const hiddenFile = "/run/.tokfence-hidden"

// buildView lays out the agent's mount namespace. First it cuts
// propagation and takes hold of every path it will show again, before
// anything covers it. Then it covers the scratch directories and shows the
// kept paths again, shallowest first, so that each wins over what lies
// above it: a kept home under a scratch /tmp comes back, and the
// $XDG_RUNTIME_DIR inside that home is covered again. Then it shows the
// agent socket, hides the secret paths (last, so that they win over any
// kept parent) and mounts the fence's own /proc.
func buildView(s *Spec) *report {
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return diagnoseSetup("make the fence's mounts private", err)
	}
	agentDir, err := holdPaths([]string{s.AgentDir}, false)
	if err != nil {
		return diagnoseSetup("open the agent socket directory", err)
	}
	defer closeHeld(agentDir)
	kept, err := holdPaths(s.Keep, true)
	if err != nil {
		return diagnoseSetup("open the paths the fence keeps", err)
	}
	defer closeHeld(kept)
	devs, err := holdPaths(devices, false)
	if err != nil {
		return diagnoseSetup("open the devices the fence keeps", err)
	}
	defer closeHeld(devs)
	if err := minimalDev(devs); err != nil {
		return diagnoseSetup("make the fence's /dev", err)
	}
	for _, op := range layers(s.Scratch, kept) {
		if err := op.apply(); err != nil {
			return diagnoseSetup(op.what(), err)
		}
	}
	if err := showAgentSocket(agentDir[0]); err != nil {
		return diagnoseSetup("show the agent socket", err)
	}
	for _, p := range s.ReadOnly {
		if err := readOnly(p); err != nil {
			return diagnoseSetup("make "+p+" read-only", err)
		}
	}
	if err := hideAll(s.Hide); err != nil {
		return diagnoseSetup("hide", err)
	}
	if err := unix.Mount("proc", "/proc", "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return diagnoseSetup("mount the fence's /proc", err)
	}
	if err := os.Chdir(s.Dir); err != nil {
		return diagnoseSetup("enter the working directory", err)
	}
	return nil
}

// devices are the host's device nodes a fence shows: what programs expect
// to open. Everything else (disks, other users' and the user's other
// terminals, cameras, GPUs) is not there.
var devices = []string{"/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty"}

// minimalDev replaces /dev with a tmpfs holding the devices, a devpts
// instance of the fence's own (so no other terminal of the user can be
// read or written) and the usual links into /proc.
func minimalDev(devs []heldPath) error {
	if err := unix.Mount("tmpfs", "/dev", "tmpfs", unix.MS_NOSUID|unix.MS_NOEXEC, "mode=0755,size=64k"); err != nil {
		return err
	}
	for _, d := range devs {
		if err := makeMountPoint(d.path, false); err != nil {
			return err
		}
		if err := unix.Mount(fdPath(d.fd), d.path, "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("%s: %w", d.path, err)
		}
	}
	for _, dir := range []string{"/dev/pts", "/dev/shm"} {
		if err := os.Mkdir(dir, 0o755); err != nil {
			return err
		}
	}
	if err := unix.Mount("devpts", "/dev/pts", "devpts", unix.MS_NOSUID|unix.MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620"); err != nil {
		return fmt.Errorf("devpts: %w", err)
	}
	for link, target := range map[string]string{"/dev/ptmx": "pts/ptmx", "/dev/fd": "/proc/self/fd",
		"/dev/stdin": "/proc/self/fd/0", "/dev/stdout": "/proc/self/fd/1", "/dev/stderr": "/proc/self/fd/2"} {
		if err := os.Symlink(target, link); err != nil {
			return err
		}
	}
	return nil
}

// layer is one scratch mount or one kept path shown again.
type layer struct {
	path string
	keep *heldPath // nil: a scratch directory
}

func (l layer) apply() error {
	if l.keep != nil {
		return reshow(*l.keep)
	}
	return scratch(l.path)
}

func (l layer) what() string {
	if l.keep != nil {
		return "show " + l.path + " inside the fence"
	}
	return "cover " + l.path
}

// layers orders the scratch mounts and kept paths shallowest first; at
// the same path the kept one comes second, and so wins.
func layers(scratchDirs []string, kept []heldPath) []layer {
	var ls []layer
	for _, d := range scratchDirs {
		ls = append(ls, layer{path: d})
	}
	for i := range kept {
		ls = append(ls, layer{path: kept[i].path, keep: &kept[i]})
	}
	sort.SliceStable(ls, func(i, j int) bool {
		di, dj := strings.Count(ls[i].path, "/"), strings.Count(ls[j].path, "/")
		if di != dj {
			return di < dj
		}
		return ls[i].keep == nil && ls[j].keep != nil
	})
	return ls
}

// heldPath is a path opened (O_PATH) before anything could cover it.
type heldPath struct {
	path string
	fd   int
	st   unix.Stat_t
}

// holdPaths opens each path with O_PATH; with optional set, a path that
// does not exist is left out (an exposed path: nothing to show).
func holdPaths(paths []string, optional bool) ([]heldPath, error) {
	var out []heldPath
	for _, p := range paths {
		fd, err := unix.Open(p, unix.O_PATH|unix.O_CLOEXEC, 0)
		if errors.Is(err, unix.ENOENT) && optional {
			continue
		}
		if err != nil {
			closeHeld(out)
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		h := heldPath{path: p, fd: fd}
		if err := unix.Fstat(fd, &h.st); err != nil {
			unix.Close(fd)
			closeHeld(out)
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		out = append(out, h)
	}
	return out, nil
}

func closeHeld(hs []heldPath) {
	for _, h := range hs {
		unix.Close(h.fd)
	}
}

// fdPath names a held path through /proc, which resolves it however the
// tree above it has been covered since.
func fdPath(fd int) string { return "/proc/self/fd/" + strconv.Itoa(fd) }

// scratch covers dir with an empty private tmpfs. /tmp keeps its sticky,
// world-writable mode; the others are the user's own.
func scratch(dir string) error {
	fi, err := os.Lstat(dir)
	if errors.Is(err, fs.ErrNotExist) || (err == nil && fi.Mode()&fs.ModeSymlink != 0) {
		return nil // nothing there to reach, or a link to a directory covered on its own (/var/run → /run)
	}
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s is not a directory", dir)
	}
	mode := "mode=0700"
	if dir == "/tmp" || dir == "/dev/shm" {
		mode = "mode=1777"
	} else if dir == "/run" {
		mode = "mode=0755"
	}
	return unix.Mount("tmpfs", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, mode+",size=50%")
}

// reshow binds a held path back at its own place when a scratch mount
// covers it, making the directories above it in the tmpfs.
func reshow(h heldPath) error {
	var now unix.Stat_t
	if unix.Stat(h.path, &now) == nil && now.Dev == h.st.Dev && now.Ino == h.st.Ino {
		return nil // still in sight
	}
	if err := makeMountPoint(h.path, h.st.Mode&unix.S_IFMT == unix.S_IFDIR); err != nil {
		return err
	}
	return unix.Mount(fdPath(h.fd), h.path, "", unix.MS_BIND|unix.MS_REC, "")
}

func makeMountPoint(p string, dir bool) error {
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	if dir {
		if err := os.Mkdir(p, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
			return err
		}
		return nil
	}
	f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	return f.Close()
}

// showAgentSocket binds the session's agent socket directory, alone, at
// AgentSocketDir in the fence's /run.
func showAgentSocket(h heldPath) error {
	if h.st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return fmt.Errorf("%s is not a directory", h.path)
	}
	if err := makeMountPoint(AgentSocketDir, true); err != nil {
		return err
	}
	if err := unix.Mount(fdPath(h.fd), AgentSocketDir, "", unix.MS_BIND, ""); err != nil {
		return err
	}
	// Read-only: the agent may connect (not a write) but not replace the
	// socket or leave files in the daemon's directory.
	return unix.Mount("", AgentSocketDir, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "")
}

// hideAll makes every path in hide unreadable: a directory is covered by
// an empty read-only tmpfs of mode 000, a file by an empty read-only file
// of mode 000. The agent holds no capability, so neither mode can be
// overridden, changed or unmounted. A symlink is followed: what it names
// is what must not be read.
func hideAll(hide []string) error {
	if err := os.WriteFile(hiddenFile, nil, 0); err != nil {
		return err
	}
	defer os.Remove(hiddenFile) // the binds keep the inode; the name goes
	for _, p := range hide {
		if err := hide1(p); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
	}
	return nil
}

// readOnly binds p onto itself read-only. The agent holds no capability
// to remount or unmount it, and a mount point cannot be renamed over or
// unlinked, so the file stays as it is.
func readOnly(p string) error {
	real, err := filepath.EvalSymlinks(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := unix.Mount(real, real, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return err
	}
	return unix.Mount("", real, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY, "")
}

func hide1(p string) error {
	real, err := filepath.EvalSymlinks(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil // nothing to read; see the README on paths made later
	}
	if err != nil {
		return err
	}
	fi, err := os.Stat(real)
	if err != nil {
		return err
	}
	const ro = unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC
	if fi.IsDir() {
		return unix.Mount("tmpfs", real, "tmpfs", ro, "mode=000,size=4k,nr_inodes=1")
	}
	if err := unix.Mount(hiddenFile, real, "", unix.MS_BIND, ""); err != nil {
		return err
	}
	return unix.Mount("", real, "", unix.MS_BIND|unix.MS_REMOUNT|ro, "")
}
