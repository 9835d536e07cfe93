package daemon

import (
	"bufio"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
)

// tcpPeerUID returns the uid owning the client end of the loopback
// connection c, from /proc/net/tcp{,6}: the client's socket is the entry
// whose local address is c's remote one and whose remote address is c's
// local one. On loopback both ends are on this machine, so the kernel
// knows who dialled; this is what lets a cap per uid stand on TCP, where
// every peer's address is 127.0.0.1.
func tcpPeerUID(c net.Conn) (int, bool) {
	local, ok1 := c.LocalAddr().(*net.TCPAddr)
	remote, ok2 := c.RemoteAddr().(*net.TCPAddr)
	if !ok1 || !ok2 {
		return 0, false
	}
	l, r := local.AddrPort(), remote.AddrPort()
	file := "/proc/net/tcp"
	if !l.Addr().Unmap().Is4() {
		file = "/proc/net/tcp6"
	}
	f, err := os.Open(file)
	if err != nil {
		return 0, false
	}
	defer f.Close()
	want := procNetAddr(r) + " " + procNetAddr(l)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) < 8 || fs[1]+" "+fs[2] != want {
			continue
		}
		uid, err := strconv.Atoi(fs[7])
		return uid, err == nil
	}
	return 0, false
}

// procNetAddr writes a as /proc/net/tcp does: the address as host-order
// 32-bit words in hex, a colon, the port in hex.
func procNetAddr(a netip.AddrPort) string {
	ip := a.Addr().Unmap()
	var b []byte
	if ip.Is4() {
		v := ip.As4()
		b = v[:]
	} else {
		v := ip.As16()
		b = v[:]
	}
	out := make([]byte, len(b))
	for i := 0; i < len(b); i += 4 {
		binary.LittleEndian.PutUint32(out[i:], binary.BigEndian.Uint32(b[i:]))
	}
	return strings.ToUpper(hex.EncodeToString(out)) + fmt.Sprintf(":%04X", a.Port())
}
