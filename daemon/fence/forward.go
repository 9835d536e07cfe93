package fence

import (
	"io"
	"net"
	"os"
	"syscall"
)

// ForwardedSignals are passed through to the agent, by `tokfence exec` to
// the fence and by the fence to the agent.
var ForwardedSignals = []os.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT,
	syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGWINCH}

// Forward accepts connections on ln and relays each, byte for byte, to
// the Unix socket at socket, until ln is closed. It knows nothing of HTTP:
// CONNECT and anything else the daemon serves pass through it alike.
func Forward(ln net.Listener, socket string) error {
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		go relay(c, socket)
	}
}

func relay(c net.Conn, socket string) {
	defer c.Close()
	up, err := net.Dial("unix", socket)
	if err != nil {
		return // the agent sees its connection close: the exit is gone
	}
	defer up.Close()
	done := make(chan struct{})
	go func() {
		_, _ = io.Copy(up, c)
		closeWrite(up)
		close(done)
	}()
	_, _ = io.Copy(c, up)
	closeWrite(c)
	<-done
}

func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
}
