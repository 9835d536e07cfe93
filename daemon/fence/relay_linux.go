package fence

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"
)

// relayMain is phase 2, pid 1 of the fence holding no capability: it
// forwards the listener to the agent socket, starts the agent, passes it
// signals, reaps every orphan, and exits with the agent's status. Its exit
// ends every process in the fence.
func relayMain() int {
	_ = unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0)
	// The capability drop cleared the parent-death signal; ask again.
	_ = unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(unix.SIGKILL), 0, 0, 0)
	for _, fd := range []int{listenFD, relayStFD, relaySpcFD} {
		syscall.CloseOnExec(fd)
	}
	status := os.NewFile(relayStFD, "status")
	say := func(r report) { _ = json.NewEncoder(status).Encode(r); status.Close() }
	var s Spec
	if err := json.NewDecoder(os.NewFile(relaySpcFD, "spec")).Decode(&s); err != nil {
		say(report{Error: "relay: read the spec: " + err.Error()})
		return 125
	}
	ln, err := net.FileListener(os.NewFile(listenFD, "listener"))
	if err != nil {
		say(report{Error: "relay: listener: " + err.Error()})
		return 125
	}
	go Forward(ln, filepath.Join(AgentSocketDir, AgentSocketName))
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, append(ForwardedSignals, unix.SIGCHLD)...)
	if err := installFilter(); err != nil {
		say(report{Error: err.Error(), Hint: hintNoFence})
		return 125
	}
	agent, err := startAgent(&s)
	if err != nil {
		say(report{Error: err.Error(), Exit: 127})
		return 127
	}
	say(report{OK: true})
	return supervise(agent, sigs)
}

// startAgent starts s's command with its environment, looked up on its
// own PATH from its working directory.
func startAgent(s *Spec) (*os.Process, error) {
	path, err := s.lookPath()
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", s.Argv[0], err)
	}
	p, err := os.StartProcess(path, s.Argv, &os.ProcAttr{Dir: s.Dir, Env: s.Env,
		Files: []*os.File{os.Stdin, os.Stdout, os.Stderr}})
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", s.Argv[0], err)
	}
	return p, nil
}

// supervise passes signals to the agent and reaps every child until the
// agent has exited; it returns the agent's exit code, or 128+n for a
// signal n, as a shell does.
func supervise(agent *os.Process, sigs <-chan os.Signal) int {
	for sig := range sigs {
		if sig != unix.SIGCHLD {
			_ = agent.Signal(sig)
			continue
		}
		for {
			var ws unix.WaitStatus
			pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
			if err != nil || pid <= 0 {
				break
			}
			if pid == agent.Pid {
				if ws.Signaled() {
					return 128 + int(ws.Signal())
				}
				return ws.ExitStatus()
			}
		}
	}
	return 125
}
