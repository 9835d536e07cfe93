package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// reaper owns every child process and temporary directory of a run and
// undoes them in reverse order, once, whether the run ends normally, on an
// error or on SIGINT.
type reaper struct {
	mu    sync.Mutex
	steps []func()
	done  bool
}

func (r *reaper) later(f func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.steps = append(r.steps, f)
}

func (r *reaper) run() {
	r.mu.Lock()
	steps := r.steps
	r.steps, r.done = nil, true
	r.mu.Unlock()
	for i := len(steps) - 1; i >= 0; i-- {
		steps[i]()
	}
}

// child is a started process the reaper stops.
type child struct {
	name string
	cmd  *exec.Cmd
	done chan struct{} // closed when Wait returns
	err  error
}

// start launches cmd with a parent-death signal (so that even a SIGKILLed
// harness leaves nothing behind) and registers it with the reaper, which
// sends SIGTERM, waits up to grace, then SIGKILLs.
func (r *reaper) start(name string, cmd *exec.Cmd, grace time.Duration) (*child, error) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	c := &child{name: name, cmd: cmd, done: make(chan struct{})}
	go func() { c.err = cmd.Wait(); close(c.done) }()
	r.later(func() { c.stop(grace) })
	return c, nil
}

func (c *child) pid() int { return c.cmd.Process.Pid }

// stop ends the child: SIGTERM, then SIGKILL after grace.
func (c *child) stop(grace time.Duration) {
	select {
	case <-c.done:
		return
	default:
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(grace):
		_ = c.cmd.Process.Kill()
		<-c.done
	}
}

// exited reports whether the child has ended.
func (c *child) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// readLine reads one line from rd within d (a child announcing its address).
func readLine(rd io.Reader, d time.Duration) (string, error) {
	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(rd).ReadString('\n')
		line <- strings.TrimSpace(s)
	}()
	select {
	case s := <-line:
		if s == "" {
			return "", errors.New("no output")
		}
		return s, nil
	case <-time.After(d):
		return "", fmt.Errorf("nothing printed within %s", d)
	}
}

// keyring is a private D-Bus session bus with an unlocked gnome-keyring,
// the same set-up as keystore/keystoretest (which needs a testing.TB, so
// its approach is reimplemented here rather than called).
type keyring struct {
	home string
	addr string
}

// env returns the variables every tokfence process of the run gets.
func (k *keyring) env() []string {
	return []string{
		"HOME=" + k.home,
		"DBUS_SESSION_BUS_ADDRESS=" + k.addr,
		"XDG_DATA_HOME=" + filepath.Join(k.home, ".local", "share"),
		"XDG_CONFIG_HOME=" + filepath.Join(k.home, ".config"),
		"XDG_STATE_HOME=" + filepath.Join(k.home, ".local", "state"),
		"XDG_RUNTIME_DIR=" + filepath.Join(k.home, "run"),
	}
}

// childEnv is os.Environ without anything tokfence or D-Bus would read
// from the user's session, plus the run's own variables.
func (k *keyring) childEnv(extra ...string) []string {
	var out []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "TOKFENCE_") || strings.HasPrefix(name, "XDG_") ||
			name == "HOME" || name == "DBUS_SESSION_BUS_ADDRESS" || name == "GOTRACEBACK" {
			continue
		}
		out = append(out, kv)
	}
	return append(append(out, k.env()...), extra...)
}

func startKeyring(ctx context.Context, r *reaper, home string) (*keyring, error) {
	for _, bin := range []string{"dbus-daemon", "gnome-keyring-daemon", "dbus-send"} {
		if _, err := exec.LookPath(bin); err != nil {
			return nil, fmt.Errorf("%s is not installed (apt-get install dbus dbus-bin gnome-keyring): %w", bin, err)
		}
	}
	for _, d := range []string{".local/share/keyrings", ".config", ".local/state", "run"} {
		if err := os.MkdirAll(filepath.Join(home, d), 0o700); err != nil {
			return nil, err
		}
	}
	k := &keyring{home: home}
	bus := exec.Command("dbus-daemon", "--session", "--nofork", "--print-address=1", "--address=unix:dir="+home)
	out, err := bus.StdoutPipe()
	if err != nil {
		return nil, err
	}
	c, err := r.start("dbus-daemon", bus, 2*time.Second)
	if err != nil {
		return nil, err
	}
	if k.addr, err = readLine(out, 10*time.Second); err != nil {
		c.stop(time.Second)
		return nil, fmt.Errorf("dbus-daemon: %w", err)
	}
	if err := k.startSecrets(r); err != nil {
		return nil, err
	}
	return k, k.waitForService(ctx)
}

// startSecrets runs gnome-keyring-daemon, which daemonizes (so it is no
// child of ours): it is stopped by the pid it prints, and exits with its
// bus in any case.
func (k *keyring) startSecrets(r *reaper) error {
	pw := make([]byte, 16)
	rand.Read(pw)
	cmd := exec.Command("gnome-keyring-daemon", "--unlock", "--components=secrets", "--daemonize")
	cmd.Env = k.childEnv()
	cmd.Stdin = strings.NewReader(hex.EncodeToString(pw))
	outb, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("gnome-keyring-daemon: %w", err)
	}
	for _, l := range strings.Split(string(outb), "\n") {
		if v, ok := strings.CutPrefix(l, "GNOME_KEYRING_PID="); ok {
			if pid, err := strconv.Atoi(strings.TrimSpace(v)); err == nil {
				r.later(func() { syscall.Kill(pid, syscall.SIGTERM) })
			}
		}
	}
	return nil
}

// waitForService polls until org.freedesktop.secrets answers on the bus.
func (k *keyring) waitForService(ctx context.Context) error {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		cmd := exec.CommandContext(ctx, "dbus-send", "--session", "--print-reply", "--dest=org.freedesktop.DBus",
			"/org/freedesktop/DBus", "org.freedesktop.DBus.NameHasOwner", "string:org.freedesktop.secrets")
		cmd.Env = k.childEnv()
		if out, err := cmd.Output(); err == nil && strings.Contains(string(out), "true") {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return errors.New("org.freedesktop.secrets did not appear on the private bus within 10s")
}

// procStatus reads VmRSS, VmHWM (KiB) and Threads of pid from /proc.
func procStatus(pid int) (rssKiB, hwmKiB, threads int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		name, v, ok := strings.Cut(l, ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) == 0 {
			continue
		}
		n, _ := strconv.ParseInt(f[0], 10, 64)
		switch name {
		case "VmRSS":
			rssKiB = n
		case "VmHWM":
			hwmKiB = n
		case "Threads":
			threads = n
		}
	}
	return rssKiB, hwmKiB, threads, nil
}

// procCPU returns the user+system CPU time pid has used, from
// /proc/PID/stat (in clock ticks of 10 ms: USER_HZ is 100 on Linux), or 0
// for pid 0 or an unreadable file.
func procCPU(pid int) time.Duration {
	if pid == 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	i := strings.LastIndexByte(string(b), ')') // the command name may hold spaces
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64) // field 14 of the whole line
	st, _ := strconv.ParseInt(f[12], 10, 64) // field 15
	return time.Duration(ut+st) * 10 * time.Millisecond
}
