package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// The fake upstream and the bare reverse proxy run as child processes of
// the harness (the same binary, started with -role), so that every proxy
// under test is a separate process and none shares a scheduler or a
// garbage collector with the load generator. A child prints its address
// on stdout and exits when its stdin closes, i.e. when the harness goes.

// statsPath is served by both children, outside every provider path.
const statsPath = "/_tfbench/stats"

// childStats is what a child reports about itself.
type childStats struct {
	ConnsOpened int64 `json:"conns_opened"`
	Served      int64 `json:"served"` // provider requests answered (the upstream only)
	Goroutines  int   `json:"goroutines"`
	RSSKiB      int64 `json:"rss_kib"`
}

// completion is the fake upstream's non-streaming reply: a small chat
// completion with usage, as the provider would send.
const completion = `{"id":"chatcmpl-1","object":"chat.completion","model":"gpt-4o-mini",` +
	`"choices":[{"index":0,"message":{"role":"assistant","content":"hello"},"finish_reason":"stop"}],` +
	`"usage":{"prompt_tokens":5,"completion_tokens":7,"total_tokens":12}}`

// eventPrefix starts every SSE event the fake upstream sends; the digits
// after it are the wall-clock send time in Unix nanoseconds, so that the
// harness can measure each event's delay (one host, one CLOCK_REALTIME).
const eventPrefix = `data: {"id":"tfb-`

func runChild(role, target string) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	var conns, served atomic.Int64
	var h http.Handler
	switch role {
	case "upstream":
		h = upstreamHandler(&conns, &served)
	case "bare":
		if h, err = bareProxy(target, &conns); err != nil {
			return err
		}
	default:
		return fmt.Errorf("unknown -role %q", role)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second,
		ConnState: func(_ net.Conn, s http.ConnState) {
			if s == http.StateNew {
				conns.Add(1)
			}
		}}
	go func() { io.Copy(io.Discard, os.Stdin); srv.Close(); os.Exit(0) }()
	go func() { // the reaper's SIGTERM: close (which unlinks a socket) and go
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM)
		<-sig
		srv.Close()
		os.Exit(0)
	}()
	fmt.Println(ln.Addr().String())
	if role == "bare" {
		// The bare proxy also serves a Unix socket: the floor for
		// Tokfence on its socket is a proxy on the same transport.
		sock := filepath.Join(os.TempDir(), fmt.Sprintf("tfbench-bare-%d.sock", os.Getpid()))
		uln, err := net.Listen("unix", sock)
		if err != nil {
			return err
		}
		fmt.Println(sock)
		go srv.Serve(uln)
	}
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func serveStats(w http.ResponseWriter, conns, served *atomic.Int64) {
	rss, _, _, _ := procStatus(os.Getpid())
	st := childStats{ConnsOpened: conns.Load(), Goroutines: runtime.NumGoroutine(), RSSKiB: rss}
	if served != nil {
		st.Served = served.Load()
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(st)
}

// upstreamHandler plays the provider. A body with "stream":true gets SSE:
// ?events=N&every=D sends N events D apart (then [DONE]); ?hold=D sends
// one event, then one a second until D has passed or the client is gone.
func upstreamHandler(conns, served *atomic.Int64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == statsPath {
			serveStats(w, conns, served)
			return
		}
		served.Add(1)
		body, _ := io.ReadAll(r.Body)
		w.Header().Set(sawHeader, credentialSeen(r.Header.Get("Authorization")))
		if !strings.Contains(string(body), `"stream":true`) {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Content-Length", strconv.Itoa(len(completion)))
			io.WriteString(w, completion)
			return
		}
		q := r.URL.Query()
		n, _ := strconv.Atoi(q.Get("events"))
		every, _ := time.ParseDuration(q.Get("every"))
		hold, _ := time.ParseDuration(q.Get("hold"))
		if hold > 0 {
			n, every = int(hold/time.Second)+1, time.Second
		}
		streamEvents(w, r.Context(), max(n, 1), every, q.Get("complete") == "1")
	})
}

// sawHeader tells the harness which credential the upstream received, so
// the sanity check can prove each variant takes the path it claims.
const sawHeader = "X-Tfbench-Saw"

func credentialSeen(auth string) string {
	switch {
	case auth == "Bearer "+fakeKey:
		return "provider-key"
	case strings.HasPrefix(auth, "Bearer ey"):
		return "capability-token"
	case auth == "":
		return "none"
	}
	return "other"
}

// streamEvents sends n events on a fixed schedule (start + i*every), so a
// late event does not shift the ones after it.
// With complete set the client means to read every event, so leaving early
// is worth a line on stderr.
func streamEvents(w http.ResponseWriter, ctx context.Context, n int, every time.Duration, complete bool) {
	fl := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	buf := make([]byte, 0, 128)
	start := time.Now()
	t := time.NewTimer(0)
	defer t.Stop()
	for i := range n {
		if wait := time.Until(start.Add(time.Duration(i) * every)); wait > 0 {
			t.Reset(wait)
			select {
			case <-t.C:
			case <-ctx.Done():
				if complete {
					fmt.Fprintf(os.Stderr, "tfbench upstream: stream left after %d/%d events: %v\n", i, n, context.Cause(ctx))
				}
				return
			}
		}
		buf = strconv.AppendInt(append(buf[:0], eventPrefix...), time.Now().UnixNano(), 10)
		buf = append(buf, `","choices":[{"delta":{"content":"tok"}}]}`+"\n\n"...)
		if _, err := w.Write(buf); err != nil {
			return
		}
		if fl.Flush() != nil {
			return
		}
	}
	io.WriteString(w, "data: [DONE]\n\n")
	fl.Flush()
}

// bareProxy is the floor for a Go proxy: httputil.ReverseProxy with
// Rewrite, streaming flushes, and a transport with as many idle
// connections as the heaviest load needs. It strips /openai like Tokfence.
func bareProxy(target string, conns *atomic.Int64) (http.Handler, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, err
	}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(u)
			pr.Out.URL.Path = strings.TrimPrefix(pr.In.URL.Path, "/openai")
			pr.Out.URL.RawPath = ""
		},
		Transport: &http.Transport{Proxy: nil, MaxIdleConns: 2048, MaxIdleConnsPerHost: 2048,
			IdleConnTimeout: 90 * time.Second, DisableCompression: true},
		FlushInterval: -1,
		ErrorLog:      log.New(quietWriter{}, "tfbench bare: ", 0),
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == statsPath {
			serveStats(w, conns, nil)
			return
		}
		// Full duplex: half duplex, net/http may consume the rest of the
		// request body as the reply's header goes out while the transport
		// still reads it, and the transport then drops the upstream
		// connection mid-reply (see bareProxy in daemon/bench_test.go).
		if err := http.NewResponseController(w).EnableFullDuplex(); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		rp.ServeHTTP(w, r)
	}), nil
}

// quietWriter drops the proxy's lines about clients that left (at the end
// of a load slice, or when the open streams are closed) and passes the rest.
type quietWriter struct{}

func (quietWriter) Write(p []byte) (int, error) {
	if bytes.Contains(p, []byte("context canceled")) || bytes.Contains(p, []byte("use of closed network connection")) {
		return len(p), nil
	}
	return os.Stderr.Write(p)
}

// fetchStats asks a child for its stats.
func fetchStats(ctx context.Context, base string) (childStats, error) {
	var st childStats
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+statsPath, nil)
	resp, err := statsClient.Do(req)
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	return st, json.NewDecoder(resp.Body).Decode(&st)
}

var statsClient = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
