// Package fence runs an agent where its only way out is Tokfence.
//
// Threat model: the agent is prompt-injected and runs as the user. Outside
// a fence it can read the keychain over the session bus, call the control
// socket, read ~/.ssh and talk to any host. Inside one (Linux) it has:
//
//   - its own user namespace (also for root), so it never holds a
//     capability in the parent namespace; the agent itself holds none at
//     all, with an empty bounding set and no_new_privs;
//   - its own network namespace with only loopback, so no route, no DNS and
//     no abstract Unix socket of the host is reachable;
//   - its own PID, IPC and UTS namespaces and /proc, so it can neither see
//     nor signal nor ptrace a process outside;
//   - its own mount namespace, where $XDG_RUNTIME_DIR, /run, /tmp and
//     /dev/shm are empty private tmpfs mounts (the usual homes of agent and
//     bus sockets), Tokfence's state, config and socket directories, the
//     keyrings and every secret-bearing path of Spec.Hide are unreadable,
//     and the one Tokfence socket in sight is the session's agent socket at
//     /run/tokfence/agent.sock.
//
// The fence's init forwards 127.0.0.1:Port (inside) to the agent socket,
// byte for byte; the daemon serves only the proxy routes there, and only to
// that session's token, so the control API is out of reach by construction.
//
// Invariants: a fence is built whole or not at all: any step that fails
// stops the start with an error naming the step and, where there is one,
// the fix; nothing runs half-fenced. The agent starts only after every
// mount, the loopback interface and the forwarder are in place. When the
// init exits, for any reason, the kernel kills every process in the fence.
package fence

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
)

// DefaultPort is the forwarder's port on the fence's own loopback. The
// fence has a network namespace of its own, so the port cannot clash with
// anything on the host.
const DefaultPort = 9471

// AgentSocketDir is where the fence shows the session's agent socket
// directory; the socket itself is AgentSocketDir/agent.sock.
const AgentSocketDir = "/run/tokfence"

// AgentSocketName is the agent socket's file name inside its directory.
const AgentSocketName = "agent.sock"

// Spec is what one fence is built from. The caller (`tokfence exec`)
// resolves every path before the fence starts.
type Spec struct {
	Argv []string `json:"argv"`
	Env  []string `json:"env"` // the agent's environment, already scrubbed
	Dir  string   `json:"dir"` // working directory: stays visible and writable
	// Hide are absolute paths the agent must not read: a directory
	// becomes an empty mount it cannot list, a file an empty one it
	// cannot open. Paths that do not exist are skipped.
	Hide []string `json:"hide"`
	// ReadOnly are absolute paths the agent may read but not change: the
	// places a shell or the desktop runs code from at the next login, so
	// that an agent cannot plant a command that would run outside the
	// fence. Paths that do not exist are skipped.
	ReadOnly []string `json:"read_only"`
	// Scratch are directories replaced by an empty, private, writable
	// tmpfs: /tmp, /run, /dev/shm and $XDG_RUNTIME_DIR, where the sockets
	// of the user's agents and buses live.
	Scratch []string `json:"scratch"`
	// Keep are paths shown again where a Scratch mount covers them
	// (the working directory, and fence.expose entries below a scratch
	// directory).
	Keep []string `json:"keep"`
	// AgentDir is the host directory holding the session's agent socket;
	// the fence shows it, alone, at AgentSocketDir.
	AgentDir string `json:"agent_dir"`
	// Port is the forwarder's port on the fence's 127.0.0.1.
	Port int `json:"port"`
}

// Validate reports the first thing wrong with s.
func (s *Spec) Validate() error {
	if len(s.Argv) == 0 || s.Argv[0] == "" {
		return errors.New("fence: no command to run")
	}
	if s.Port < 1 || s.Port > 65535 {
		return fmt.Errorf("fence: port %d out of range", s.Port)
	}
	// The fence's own files (the agent socket's mount point, the hidden
	// file stand-in) are made in /run, which must be its own tmpfs.
	if !slices.Contains(s.Scratch, "/run") {
		return errors.New("fence: /run must be a scratch directory")
	}
	for _, p := range append(append(append(append([]string{s.Dir, s.AgentDir}, s.Hide...), s.ReadOnly...), s.Scratch...), s.Keep...) {
		if !filepath.IsAbs(p) || filepath.Clean(p) != p {
			return fmt.Errorf("fence: path %q must be absolute and clean", p)
		}
	}
	return nil
}

// DefaultHidden are the secret-bearing paths below the home directory
// that no agent sees unless the user exposes one (fence.expose).
var DefaultHidden = []string{
	"~/.ssh", "~/.gnupg", "~/.aws", "~/.config/gcloud", "~/.azure", "~/.kube",
	"~/.docker/config.json", "~/.netrc", "~/.npmrc", "~/.pypirc", "~/.config/gh",
	"~/.git-credentials", "~/.password-store",
	// The keyrings themselves, in case a keyring file is readable: the
	// Secret Service's (gnome-keyring), KWallet's.
	"~/.local/share/keyrings", "~/.local/share/kwalletd",
}

// DefaultReadOnly are the files and directories below the home directory
// from which code runs outside the fence later (login shells, the desktop's
// autostart, systemd user units, git's config, the user's own bin
// directories); a fenced agent may read but not change them.
var DefaultReadOnly = []string{
	"~/.bashrc", "~/.bash_profile", "~/.bash_login", "~/.bash_logout", "~/.profile",
	"~/.zshrc", "~/.zshenv", "~/.zprofile", "~/.zlogin", "~/.config/fish",
	"~/.pam_environment", "~/.xprofile", "~/.xsessionrc", "~/.config/environment.d",
	"~/.config/autostart", "~/.config/systemd", "~/.local/share/systemd",
	"~/.gitconfig", "~/.config/git", "~/.local/bin", "~/bin",
}

// Expand resolves a leading "~/" (or a lone "~") against home and cleans
// the result; it refuses anything that is not then absolute.
func Expand(p, home string) (string, error) {
	switch {
	case p == "~":
		p = home
	case strings.HasPrefix(p, "~/"):
		p = filepath.Join(home, p[2:])
	}
	if !filepath.IsAbs(p) {
		return "", fmt.Errorf("fence path %q: want an absolute path or one starting with ~/", p)
	}
	return filepath.Clean(p), nil
}

// Plan is the resolved view of the host a fence will give its agent.
type Plan struct {
	Hide     []string
	ReadOnly []string
	Scratch  []string
	Keep     []string
	// Exposed are paths the user re-showed with fence.expose, for the
	// audit trail.
	Exposed []string
}

// PlanInput is what Resolve needs to know of the user and Tokfence.
type PlanInput struct {
	Home       string
	RuntimeDir string   // $XDG_RUNTIME_DIR, "" when unset
	DataHome   string   // $XDG_DATA_HOME, "" when unset
	Dir        string   // the agent's working directory
	Tokfence   []string // Tokfence's own state, config and socket directories
	Hide       []string // fence.hide, as written (~ allowed)
	ReadOnly   []string // fence.read_only, as written
	Expose     []string // fence.expose, as written
}

// Resolve builds the Plan: the default hidden and read-only paths,
// Tokfence's own directories, fence.hide and fence.read_only, less what
// fence.expose lifts. An exposed path that is neither hidden nor read-only
// itself is kept: shown again where a scratch directory covers it. One
// below a hidden directory is refused (the hidden one must be exposed).
func Resolve(in PlanInput) (Plan, error) {
	var p Plan
	hide, err := expandSet(in.Home, DefaultHidden, in.Tokfence, in.Hide)
	if err != nil {
		return p, err
	}
	if in.DataHome != "" {
		hide[filepath.Join(in.DataHome, "keyrings")] = true
		hide[filepath.Join(in.DataHome, "kwalletd")] = true
	}
	ro, err := expandSet(in.Home, DefaultReadOnly, in.ReadOnly)
	if err != nil {
		return p, err
	}
	if p.Scratch, err = scratchDirs(in); err != nil {
		return p, err
	}
	p.Keep = []string{in.Dir}
	for _, e := range in.Expose {
		abs, err := Expand(e, in.Home)
		if err != nil {
			return p, err
		}
		p.Exposed = append(p.Exposed, abs)
		if hide[abs] || ro[abs] {
			delete(hide, abs)
			delete(ro, abs)
			continue
		}
		p.Keep = append(p.Keep, abs)
	}
	for h := range hide {
		for _, k := range p.Keep {
			if within(k, h) {
				return p, hiddenKeepError(k, h, k == in.Dir)
			}
		}
		p.Hide = append(p.Hide, h)
		delete(ro, h)
	}
	for r := range ro {
		p.ReadOnly = append(p.ReadOnly, r)
	}
	sort.Strings(p.Hide)
	sort.Strings(p.ReadOnly)
	p.Keep = dedupe(p.Keep)
	return p, nil
}

// expandSet expands every path of lists against home into a set.
func expandSet(home string, lists ...[]string) (map[string]bool, error) {
	set := map[string]bool{}
	for _, list := range lists {
		for _, p := range list {
			abs, err := Expand(p, home)
			if err != nil {
				return nil, err
			}
			set[abs] = true
		}
	}
	return set, nil
}

// scratchDirs are the directories a fence covers with empty tmpfs mounts.
func scratchDirs(in PlanInput) ([]string, error) {
	dirs := []string{"/dev/shm", "/run", "/tmp", "/var/run"} // /var/run is a real directory on some systems (docker.sock)
	if in.RuntimeDir != "" {
		rd, err := Expand(in.RuntimeDir, in.Home)
		if err != nil {
			return nil, fmt.Errorf("XDG_RUNTIME_DIR: %w", err)
		}
		dirs = append(dirs, rd)
	}
	return dedupe(dirs), nil
}

func hiddenKeepError(kept, hidden string, isDir bool) error {
	if isDir {
		return &Error{Cause: fmt.Sprintf("the working directory %s is inside %s, which the fence hides", kept, hidden),
			Fix: "run the agent from another directory, or re-show the path with fence.expose in the config (audited)"}
	}
	return &Error{Cause: fmt.Sprintf("fence.expose names %s, inside %s, which the fence hides", kept, hidden),
		Fix: fmt.Sprintf("expose %s itself, or nothing below it", hidden)}
}

// within reports whether p is dir or lies below it.
func within(p, dir string) bool {
	return p == dir || strings.HasPrefix(p, strings.TrimSuffix(dir, "/")+"/")
}

func dedupe(s []string) []string {
	sort.Strings(s)
	out := s[:0]
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}

// UserDirs returns the home directory and XDG directories of the current
// user from the environment.
func UserDirs() (home, runtimeDir, dataHome string, err error) {
	home, err = os.UserHomeDir()
	if err != nil {
		return "", "", "", fmt.Errorf("fence: find the home directory: %w", err)
	}
	return home, os.Getenv("XDG_RUNTIME_DIR"), os.Getenv("XDG_DATA_HOME"), nil
}
