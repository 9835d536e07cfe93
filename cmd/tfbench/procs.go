package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/tokfence/tokfence/keystore/keystoretest"
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
	name   string
	stdout *bufio.Reader // what a tfbench child prints: its addresses
	cmd    *exec.Cmd
	done   chan struct{} // closed when Wait returns
	err    error
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
func readLine(rd *bufio.Reader, d time.Duration) (string, error) {
	line := make(chan string, 1)
	go func() {
		s, _ := rd.ReadString('\n')
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
// started by keystoretest.Launch, the same set-up the tests use.
type keyring struct {
	*keystoretest.Env
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
	return append(append(out, k.Vars()...), extra...)
}

func startKeyring(ctx context.Context, r *reaper, home string) (*keyring, error) {
	env, stop, err := keystoretest.Launch(ctx, home)
	if err != nil {
		return nil, err
	}
	r.later(stop)
	return &keyring{env}, nil
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

// treePIDs returns root and its descendants, found through the parent
// field of every /proc/PID/stat: a peer such as a Node gateway may run
// workers, and its memory and CPU are the whole tree's.
func treePIDs(root int) []int {
	entries, _ := os.ReadDir("/proc")
	parent := map[int]int{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue // gone meanwhile
		}
		if pp, ok := parsePPID(b); ok {
			parent[pid] = pp
		}
	}
	return descendants(parent, root)
}

// parsePPID returns the parent pid from the text of /proc/PID/stat.
func parsePPID(stat []byte) (int, bool) {
	i := bytes.LastIndexByte(stat, ')') // the command name may hold spaces and parentheses
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(string(stat[i+1:]))
	if len(f) < 2 {
		return 0, false
	}
	pp, err := strconv.Atoi(f[1]) // field 4 of the whole line, after the state
	return pp, err == nil
}

// descendants returns root followed by every pid below it in parent
// (pid → parent pid), breadth first.
func descendants(parent map[int]int, root int) []int {
	children := map[int][]int{}
	for pid, pp := range parent {
		children[pp] = append(children[pp], pid)
	}
	out := []int{root}
	for i := 0; i < len(out); i++ {
		kids := children[out[i]]
		slices.Sort(kids)
		out = append(out, kids...)
	}
	return out
}

// treeRSS sums VmRSS and VmHWM (KiB) over root's process tree. The sum of
// peaks is an upper bound of the tree's peak: the processes need not have
// peaked at once.
func treeRSS(root int) (rssKiB, hwmKiB int64) {
	for _, pid := range treePIDs(root) {
		rss, hwm, _, err := procStatus(pid)
		if err == nil {
			rssKiB, hwmKiB = rssKiB+rss, hwmKiB+hwm
		}
	}
	return rssKiB, hwmKiB
}

// treeCPU sums procCPU over root's process tree, or 0 for pid 0.
func treeCPU(root int) time.Duration {
	if root == 0 {
		return 0
	}
	var d time.Duration
	for _, pid := range treePIDs(root) {
		d += procCPU(pid)
	}
	return d
}
