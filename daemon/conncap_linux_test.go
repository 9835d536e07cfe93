package daemon

import (
	"net"
	"os"
	"os/exec"
	"testing"

	"github.com/tokfence/tokfence/daemon/localsock"
)

// TestTCPPeerUIDNamesTheDialler: the uid the cap counts a loopback TCP
// connection against is the dialling process's, read from /proc/net/tcp.
func TestTCPPeerUIDNamesTheDialler(t *testing.T) {
	for _, network := range []string{"tcp4", "tcp6"} {
		addr := map[string]string{"tcp4": "127.0.0.1:0", "tcp6": "[::1]:0"}[network]
		ln, err := net.Listen(network, addr)
		if err != nil {
			t.Logf("%s: %v (no such loopback here)", network, err)
			continue
		}
		defer ln.Close()
		go func() {
			c, err := net.Dial(network, ln.Addr().String())
			if err == nil {
				defer c.Close()
				c.Read(make([]byte, 1))
			}
		}()
		c, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		uid, ok := localsock.TCPPeerUID(c)
		c.Close()
		if !ok || uid != os.Getuid() {
			t.Fatalf("%s: localsock.TCPPeerUID = %d, %v; want this process's uid %d", network, uid, ok, os.Getuid())
		}
	}
}

// TestTCPPeerUIDOfAnotherUser: a connection dialled by uid 65534 (curl
// through setpriv) is counted against 65534, not against the daemon's
// own uid, which owns the accepting end.
func TestTCPPeerUIDOfAnotherUser(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to dial as another uid") // CI runs as root, so it runs there
	}
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cmd := exec.Command("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
		"curl", "-s", "--max-time", "5", "http://"+ln.Addr().String()+"/")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if uid, ok := localsock.TCPPeerUID(c); !ok || uid != 65534 {
		t.Fatalf("localsock.TCPPeerUID of curl as 65534 = %d, %v", uid, ok)
	}
}

// BenchmarkTCPPeerUID is the cost per accepted TCP connection of finding
// its uid, with a hundred other connections open (the table it reads).
func BenchmarkTCPPeerUID(b *testing.B) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	var conns []net.Conn
	for range 101 {
		d, err := net.Dial("tcp4", ln.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		c, err := ln.Accept()
		if err != nil {
			b.Fatal(err)
		}
		conns = append(conns, d, c)
	}
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	c := conns[len(conns)-1]
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := localsock.TCPPeerUID(c); !ok {
			b.Fatal("not found")
		}
	}
}
