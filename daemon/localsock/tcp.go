package localsock

import (
	"context"
	"fmt"
	"net"
)

// CheckLoopbackAddr refuses a TCP listen address unless every address its
// host resolves to is loopback: the TCP listener has no peer credentials,
// so it must never be reachable from another machine.
func CheckLoopbackAddr(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("tcp listen address %q: %w", addr, err)
	}
	if port == "" {
		return fmt.Errorf("tcp listen address %q: no port", addr)
	}
	if host == "" {
		return fmt.Errorf("tcp listen address %q: an empty host listens on every interface; use 127.0.0.1", addr)
	}
	ips, err := net.DefaultResolver.LookupIPAddr(context.Background(), host)
	if err != nil || len(ips) == 0 {
		return fmt.Errorf("tcp listen address %q: cannot resolve host: %v", addr, err)
	}
	for _, ip := range ips {
		if !ip.IP.IsLoopback() {
			return fmt.Errorf("tcp listen address %q resolves to %s, which is not loopback", addr, ip.IP)
		}
	}
	return nil
}
