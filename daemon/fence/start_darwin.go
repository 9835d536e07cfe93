package fence

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"syscall"
)

// Supported reports whether this platform can build a fence. On macOS the
// fence is a Seatbelt profile (sandbox-exec); it has not been run on a
// real Mac by this project's CI (see the README).
const Supported = true

// sandboxExec is macOS's Seatbelt front end.
const sandboxExec = "/usr/bin/sandbox-exec"

// Start listens for the forwarder on the host's loopback (macOS has no
// network namespace, so the kernel picks a free port and port is unused)
// and starts the init, which waits for Run.
func Start(stdin io.Reader, stdout, stderr io.Writer, _ int) (*Fence, error) {
	if _, err := os.Stat(sandboxExec); err != nil {
		return nil, &Error{Cause: "sandbox-exec is missing: " + err.Error(), Fix: hintNoFence}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, &Error{Cause: "listen for the forwarder: " + err.Error(), Fix: hintNoFence}
	}
	exe, err := os.Executable()
	if err == nil {
		var f *Fence
		if f, err = spawn(exe, stdin, stdout, stderr, nil); err == nil {
			f.port, f.forward = ln.Addr().(*net.TCPAddr).Port, ln
			return f, nil
		}
	}
	ln.Close()
	return nil, &Error{Cause: "start the fence's init: " + err.Error(), Fix: hintNoFence}
}

// Run sends s to the init, serves the forwarder from this process (outside
// the sandbox) and waits until the agent runs.
func (f *Fence) Run(s Spec) error {
	if err := f.send(s); err != nil {
		f.forward.Close()
		return err
	}
	go Forward(f.forward, filepath.Join(s.AgentDir, AgentSocketName))
	go func() { <-f.done; f.forward.Close() }()
	return f.awaitReport()
}

// MaybeInit runs the fence's init when this process was started as one,
// and then never returns. main calls it before anything else.
func MaybeInit() {
	if len(os.Args) >= 2 && os.Args[1] == initArg {
		os.Exit(initMain())
	}
}

// initMain reads the Spec, writes the Seatbelt profile for it and becomes
// sandbox-exec running the agent: the same pid, so the daemon's binding
// to it holds.
func initMain() int {
	status := os.NewFile(4, "status")
	say := func(r report) { _ = json.NewEncoder(status).Encode(r) }
	var s Spec
	if err := json.NewDecoder(io.LimitReader(os.NewFile(3, "spec"), 16<<20)).Decode(&s); err != nil {
		say(report{Error: "read the fence spec: " + err.Error(), Hint: hintNoFence})
		return 125
	}
	home, _ := os.UserHomeDir()
	if real, err := filepath.EvalSymlinks(home); err == nil {
		home = real
	}
	profile, err := SeatbeltProfile(SeatbeltParams{Port: s.Port, Hidden: darwinHidden(&s), Home: home})
	if err != nil {
		say(report{Error: err.Error(), Hint: hintNoFence})
		return 125
	}
	path, err := s.lookPath()
	if err != nil {
		say(report{Error: fmt.Sprintf("start %s: %v", s.Argv[0], err), Exit: 127})
		return 127
	}
	if err := os.Chdir(s.Dir); err != nil {
		say(report{Error: "enter the working directory: " + err.Error(), Hint: hintNoFence})
		return 125
	}
	syscall.CloseOnExec(3)
	syscall.CloseOnExec(4)
	say(report{OK: true})
	args := append([]string{"sandbox-exec", "-p", profile, path}, s.Argv[1:]...)
	err = syscall.Exec(sandboxExec, args, s.Env)
	fmt.Fprintf(os.Stderr, "tokfence: error: exec sandbox-exec: %v\n", err)
	return 126
}

// darwinHidden is what the profile denies: the hidden paths and the
// scratch directories that hold sockets ($XDG_RUNTIME_DIR), but not /tmp,
// which macOS tools need and cannot be swapped for an empty one here.
// Seatbelt matches paths, not files, so each is also given resolved.
func darwinHidden(s *Spec) []string {
	out := append([]string(nil), s.Hide...)
	for _, d := range s.Scratch {
		if d != "/tmp" && d != "/dev/shm" && d != "/run" {
			out = append(out, d)
		}
	}
	for _, p := range out {
		if real, err := filepath.EvalSymlinks(p); err == nil && real != p {
			out = append(out, real)
		}
	}
	return out
}
