package daemon

import (
	"crypto/tls"
	"net"
	"net/http"
	"time"
)

// newUpstreamTransport is the one transport that talks to providers. It
// ignores HTTPS_PROXY and friends (Proxy: nil), verifies TLS, speaks HTTP/2
// where the upstream offers it, never decompresses (the sensors must see
// what the agent will see, and Accept-Encoding is forced to identity), and
// bounds every phase that can hang.
func newUpstreamTransport(cfg Config) *http.Transport {
	return &http.Transport{
		Proxy: nil,
		DialContext: (&net.Dialer{
			Timeout:   10 * time.Second, // connect
			KeepAlive: 30 * time.Second,
		}).DialContext,
		TLSClientConfig:        &tls.Config{MinVersion: tls.VersionTLS12},
		ForceAttemptHTTP2:      true,
		TLSHandshakeTimeout:    10 * time.Second,
		ResponseHeaderTimeout:  cfg.UpstreamHeaderTimeout.Duration,
		ExpectContinueTimeout:  time.Second,
		IdleConnTimeout:        90 * time.Second,
		MaxIdleConns:           1024, // agents fan out; a small pool churns connections past 64 in flight
		MaxIdleConnsPerHost:    512,
		DisableCompression:     true,
		MaxResponseHeaderBytes: 1 << 20,
		// Each upstream connection of an open stream keeps both buffers
		// for its life. Request bodies are written past the buffer
		// (bytes.Reader's WriteTo), and reads the size of the caller's
		// buffer or more bypass it, so small ones cost a syscall or two
		// on a large response header at most.
		WriteBufferSize: 1 << 10,
		ReadBufferSize:  1 << 10,
	}
}
