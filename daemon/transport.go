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
		// for its life, so they are small. A request whose header and
		// body fit in 1 KiB (a chat call) goes out in one write; a larger
		// one in a few, which its size dwarfs. Reads the size of the
		// caller's buffer or more bypass the read buffer, so only a large
		// response header costs an extra read.
		WriteBufferSize: 1 << 10,
		ReadBufferSize:  1 << 10,
	}
}
