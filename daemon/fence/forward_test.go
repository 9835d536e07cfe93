package fence

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// echoServer serves HTTP on ln: every request gets its body back.
func echoServer(t testing.TB, ln net.Listener) {
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Length", strconv.Itoa(len(b)))
		w.Write(b)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
}

// forwarded starts an echo server on a Unix socket and Forward in front
// of it on 127.0.0.1; it returns the forwarder's address.
func forwarded(t testing.TB) string {
	sock := filepath.Join(t.TempDir(), AgentSocketName)
	uln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	echoServer(t, uln)
	tln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go Forward(tln, sock)
	t.Cleanup(func() { tln.Close() })
	return tln.Addr().String()
}

func TestForwardRelaysBothWaysAndHalfCloses(t *testing.T) {
	addr := forwarded(t)
	resp, err := http.Post("http://"+addr+"/x", "text/plain", strings.NewReader("hello through the fence"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "hello through the fence" {
		t.Fatalf("echo through Forward = %q", b)
	}
	// A big body in both directions, and a client that half-closes.
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	body := bytes.Repeat([]byte("x"), 4<<20)
	go func() {
		io.WriteString(c, "POST /big HTTP/1.1\r\nHost: a\r\nConnection: close\r\nContent-Length: 4194304\r\n\r\n")
		c.Write(body)
		c.(*net.TCPConn).CloseWrite()
	}()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	got, err := io.ReadAll(c)
	if err != nil || !bytes.HasSuffix(got, body) {
		t.Fatalf("4 MiB echo through Forward: %d bytes, err %v", len(got), err)
	}
}

func TestForwardClosesWhenTheExitIsGone(t *testing.T) {
	tln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer tln.Close()
	go Forward(tln, filepath.Join(t.TempDir(), "no-such.sock"))
	c, err := net.Dial("tcp", tln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if n, err := c.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("read from a forwarder without an agent socket = %d, %v; want EOF", n, err)
	}
}

// BenchmarkForwarder measures one small request and reply over a
// keep-alive connection: straight to an HTTP server on loopback TCP, and
// through Forward to the same server on a Unix socket, as an agent in a
// fence reaches the daemon. p50-µs is the median per request.
func BenchmarkForwarder(b *testing.B) {
	direct, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	echoServer(b, direct)
	for _, bc := range []struct{ name, addr string }{
		{"direct-tcp", direct.Addr().String()},
		{"forwarded", forwarded(b)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			hc := &http.Client{Transport: &http.Transport{Proxy: nil}}
			body := []byte(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`)
			lat := make([]time.Duration, 0, b.N)
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				start := time.Now()
				resp, err := hc.Post("http://"+bc.addr+"/v1/chat/completions", "application/json", bytes.NewReader(body))
				if err != nil {
					b.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				lat = append(lat, time.Since(start))
			}
			b.StopTimer()
			sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
			b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds())/1e3, "p50-µs")
		})
	}
}
