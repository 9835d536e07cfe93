package fence

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
)

// initArg is the hidden first argument with which the tokfence binary
// re-executes itself as a fence's init.
const initArg = "__fence-init"

// Fence is a started fence. Its init holds, building nothing, until Run
// sends it the Spec.
type Fence struct {
	cmd    *exec.Cmd
	spec   *os.File // write end: the Spec, then closed
	status *os.File // read end: the init's report
	done   chan struct{}
	state  *os.ProcessState
	port   int
	// forward is the forwarder's listener where it runs in this process
	// (macOS); on Linux the fence's init runs it.
	forward net.Listener
}

// spawn starts exe, this binary, as a fence's init with attr, the Spec pipe at
// fd 3 and the status pipe at fd 4; the init waits for the Spec.
func spawn(exe string, stdin io.Reader, stdout, stderr io.Writer, attr *syscall.SysProcAttr) (*Fence, error) {
	specR, specW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("fence: pipe: %w", err)
	}
	statusR, statusW, err := os.Pipe()
	if err != nil {
		specR.Close()
		specW.Close()
		return nil, fmt.Errorf("fence: pipe: %w", err)
	}
	cmd := exec.Command(exe, initArg)
	cmd.Args[0] = "tokfence-fence"
	cmd.Env = []string{} // the init needs nothing; the agent's env travels in the Spec
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, stdout, stderr
	cmd.ExtraFiles = []*os.File{specR, statusW} // fds 3 and 4
	cmd.SysProcAttr = attr
	err = cmd.Start()
	specR.Close()
	statusW.Close()
	if err != nil {
		specW.Close()
		statusR.Close()
		return nil, err
	}
	f := &Fence{cmd: cmd, spec: specW, status: statusR, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		f.state = cmd.ProcessState
		close(f.done)
	}()
	return f, nil
}

// lookPath finds the agent's command on the agent's own PATH, from the
// working directory the caller is already in.
func (s *Spec) lookPath() (string, error) {
	for _, kv := range s.Env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			os.Setenv("PATH", v)
		}
	}
	return exec.LookPath(s.Argv[0])
}

// Port returns the forwarder's port on the fence's loopback.
func (f *Fence) Port() int { return f.port }

// Pid returns the init's process id on the host.
func (f *Fence) Pid() int { return f.cmd.Process.Pid }

// report is what the init writes on its status pipe: once, after the
// agent started, or when building the fence failed.
type report struct {
	OK    bool   `json:"ok,omitempty"`
	Error string `json:"error,omitempty"`
	Hint  string `json:"hint,omitempty"`
	Exit  int    `json:"exit,omitempty"` // the exit code the fence will end with when the agent could not start
}

// send validates s and writes it to the init, which waits for it.
func (f *Fence) send(s Spec) error {
	if err := s.Validate(); err != nil {
		f.Kill()
		return err
	}
	b, err := json.Marshal(s)
	if err == nil {
		_, err = f.spec.Write(b)
	}
	f.spec.Close()
	if err != nil {
		f.Kill()
		return fmt.Errorf("fence: send the spec to its init: %w", err)
	}
	return nil
}

// awaitReport reads the init's one report: nil once the agent runs.
func (f *Fence) awaitReport() error {
	var r report
	err := json.NewDecoder(io.LimitReader(f.status, 64<<10)).Decode(&r)
	f.status.Close()
	switch {
	case err != nil:
		<-f.done
		return &Error{Cause: fmt.Sprintf("the fence's init ended before it reported (%v)", f.state), Fix: hintNoFence}
	case r.Error != "" && r.Exit != 0:
		return &StartError{Msg: r.Error, Code: r.Exit}
	case r.Error != "":
		<-f.done
		return &Error{Cause: r.Error, Fix: r.Hint}
	}
	return nil
}

// Signal sends sig to the init, which passes it to the agent.
func (f *Fence) Signal(sig os.Signal) error { return f.cmd.Process.Signal(sig) }

// Kill ends the fence: the init and, with it, every process inside.
func (f *Fence) Kill() { _ = f.cmd.Process.Kill() }

// Wait waits for the fence to end and returns the init's state, whose
// exit code is the agent's (128+n when a signal n ended it).
func (f *Fence) Wait() *os.ProcessState {
	<-f.done
	return f.state
}

// Done is closed when the fence has ended.
func (f *Fence) Done() <-chan struct{} { return f.done }

// StartError is an agent that could not be started inside a built fence
// (no such command): the fence exits with Code, as a shell would (127).
type StartError struct {
	Msg  string
	Code int
}

func (e *StartError) Error() string { return e.Msg }
