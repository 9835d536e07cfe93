package daemon

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tokfence/tokfence/daemon/api"
)

// TestStreamBurstsGoOutWholeAndAtOnce: a streamed reply that arrives
// faster than 4 KiB reads take it reaches the agent in chunks as large as
// an upstream read brings (one write where there were eight), and no byte
// of a burst waits for the upstream's next. The upstream sends each burst
// only after the agent has read every event of the one before, so bytes
// held back for more would stall the stream until the read deadline. The
// bursts straddle the 4 KiB copy buffer and the 32 KiB burst buffer, and
// the daemon strips the usage chunk it asked for, which the stripper must
// find in a burst's tail.
func TestStreamBurstsGoOutWholeAndAtOnce(t *testing.T) {
	sizes := []int{200 << 10, 100, 4 << 10, 4<<10 - 1, 4<<10 + 1, 32 << 10, 32<<10 + 1, 64 << 10, 1, 300 << 10, 9000}
	bursts := make([][]byte, len(sizes))
	var want bytes.Buffer
	for i, n := range sizes {
		var b bytes.Buffer
		for k := 0; b.Len() < n; k++ {
			// events of uneven lengths, so that read and event ends fall
			// everywhere
			fmt.Fprintf(&b, "data: {\"choices\":[{\"delta\":{\"content\":\"b%d-%d %s\"}}]}\n\n", i, k, strings.Repeat("word ", k%97))
		}
		fmt.Fprintf(&b, "data: {\"choices\":[{\"delta\":{\"content\":\"end%d.\"}}]}\n\n", i)
		bursts[i] = b.Bytes()
		want.Write(b.Bytes())
	}
	want.WriteString("data: [DONE]\n\n")
	ack := make(chan struct{})
	e := startProxyEnv(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for i, b := range bursts {
			if i == len(bursts)-1 { // the usage chunk in the last burst's tail
				b = append(b, "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":7}}\n\n"...)
			}
			w.Write(b)
			w.(http.Flusher).Flush()
			select {
			case <-ack:
			case <-time.After(15 * time.Second):
				return
			}
		}
		io.WriteString(w, "data: [DONE]\n\n")
	})
	e.up.record = false
	g := e.grant(t, api.GrantRequest{})
	c, err := net.Dial("tcp", e.d.tcpAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	body := `{"model":"gpt-4o-mini","stream":true,"messages":[]}`
	fmt.Fprintf(c, "POST /openai/v1/chat/completions HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", e.d.tcpAddr, g.Token, len(body), body) // the Host is checked
	br := bufio.NewReader(c)
	c.SetReadDeadline(time.Now().Add(15 * time.Second))
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || len(resp.TransferEncoding) != 1 || resp.TransferEncoding[0] != "chunked" {
		t.Fatalf("status %d, transfer encoding %v", resp.StatusCode, resp.TransferEncoding)
	}
	// The chunks are read off the wire here, not by ReadResponse's body,
	// to see how the daemon wrote them: each chunk is one write.
	var got bytes.Buffer
	largest, next := 0, 0
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("after %d bytes, waiting for burst %d's end (the daemon held it for the upstream's next): %v", got.Len(), next, err)
		}
		n, err := strconv.ParseInt(strings.TrimSpace(line), 16, 64)
		if err != nil {
			t.Fatalf("chunk size line %q", line)
		}
		if n == 0 {
			break
		}
		chunk := make([]byte, n+2)
		if _, err := io.ReadFull(br, chunk); err != nil || string(chunk[n:]) != "\r\n" {
			t.Fatalf("chunk of %d bytes after %d, waiting for burst %d's end: %v", n, got.Len(), next, err)
		}
		got.Write(chunk[:n])
		largest = max(largest, int(n))
		for next < len(bursts) && bytes.Contains(got.Bytes(), fmt.Appendf(nil, `"end%d."`, next)) {
			next++
			ack <- struct{}{}
			c.SetReadDeadline(time.Now().Add(15 * time.Second))
		}
	}
	if got.String() != want.String() {
		t.Fatalf("the agent got %d bytes, want %d (usage chunk kept: %v)", got.Len(), want.Len(), strings.Contains(got.String(), `"usage"`))
	}
	if largest <= copyBufSize {
		t.Errorf("largest chunk %d bytes: the bursts went out in copy-buffer pieces", largest)
	}
}
