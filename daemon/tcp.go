package daemon

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
)

// checkLoopbackAddr refuses a TCP listen address unless every address its
// host resolves to is loopback: the TCP listener has no peer credentials,
// so it must never be reachable from another machine.
func checkLoopbackAddr(addr string) error {
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

// tcpGuard fronts the TCP listener. Loopback TCP is hostile ground: any
// local user and any web page (through DNS rebinding) can reach it, so
// requests with an Origin are refused and the Host must name the listener
// itself. The control API is never routed here.
func tcpGuard(port string, next http.Handler) http.Handler {
	allowed := map[string]bool{
		"127.0.0.1:" + port: true, "localhost:" + port: true, "[::1]:" + port: true,
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Origin") != "" || r.Header.Get("Sec-Fetch-Site") != "" {
			writeError(w, http.StatusForbidden, errPermission, "requests from browsers (with an Origin) are refused")
			return
		}
		if !allowed[strings.ToLower(r.Host)] {
			writeError(w, http.StatusMisdirectedRequest, errPermission, "unexpected Host header; use 127.0.0.1:"+port)
			return
		}
		next.ServeHTTP(w, r)
	})
}
