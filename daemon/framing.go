package daemon

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
)

// net/http is lenient where a proxy must not be (RFC 9112): it serves a
// request that has both Content-Length and Transfer-Encoding (dropping
// the length) and keeps the connection for the next one, though §6.1 says
// such a connection must be closed, since the peer that framed it may not
// agree on where the next request starts (request smuggling); and it
// folds obs-fold continuation lines (§5.2) into the header value instead
// of refusing them. It keeps no trace of either, so framedConn reads the
// same bytes net/http reads, follows each request's framing as the wire
// has it, and notes for each request whether it was framed so; the front
// door refuses those requests and closes the connection.

// framing is what framedConn noticed about one request's header block.
type framing struct {
	clAndTE bool // both Content-Length and Transfer-Encoding
	fold    bool // an obs-fold continuation line
	// lost: an earlier request's framing could not be followed, so where
	// this one starts is the connection's word against ours.
	lost bool
}

// suspect reports whether the request must be refused and its connection
// closed.
func (f framing) suspect() string {
	switch {
	case f.clAndTE:
		return "a request with both Content-Length and Transfer-Encoding is refused (RFC 9112 6.1)"
	case f.fold:
		return "obs-fold header continuation lines are refused (RFC 9112 5.2)"
	case f.lost:
		return "this connection's request framing cannot be followed; reconnect"
	}
	return ""
}

// framedConn is a connection whose reads are followed request by request.
type framedConn struct {
	net.Conn
	mu sync.Mutex
	// notes holds one note per header block seen, in order, from that of
	// request base on: those of requests already served are dropped, so
	// that a keep-alive connection keeps what is in flight, not a note
	// for every request it ever carried.
	notes  []framing
	base   int
	served int // requests the front door has asked about
	st     framer
}

func (c *framedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.mu.Lock()
		c.notes = c.st.feed(p[:n], c.notes)
		c.mu.Unlock()
	}
	return n, err
}

// next returns what was noticed about the next request served on c, in
// the order net/http serves them (one at a time per connection).
func (c *framedConn) next() framing {
	c.mu.Lock()
	defer c.mu.Unlock()
	i := c.served
	c.served++
	f := framing{lost: c.st.lost}
	if j := i - c.base; j < len(c.notes) {
		f = c.notes[j]
	}
	// Drop the notes of the requests served, in place: the next header
	// block's note reuses the room.
	if k := min(c.served-c.base, len(c.notes)); k > 0 {
		c.notes = c.notes[:copy(c.notes, c.notes[k:])]
		c.base += k
	}
	return f
}

// NetConn is the connection beneath.
func (c *framedConn) NetConn() net.Conn { return c.Conn }

// hijacked stops following c: a connection switched to another protocol
// (a WebSocket) carries no more HTTP requests, and its frames are not to
// be read, or held, as a header block.
func (c *framedConn) hijacked() {
	c.mu.Lock()
	c.st.lost, c.st.hdr, c.st.line = true, nil, nil
	c.mu.Unlock()
}

// framer is the state of the framing follower: header block, then body
// by Content-Length or chunks, then the next header block.
type framer struct {
	state   int
	hdr     []byte // the header block so far
	left    int64  // body bytes (or chunk bytes) still to skip
	line    []byte // a chunk-size or trailer line so far
	lost    bool   // framing no longer followed (malformed): note nothing
	trailer bool
}

const (
	inHeader = iota
	inBody
	inChunkSize
	inChunkData
	inChunkCRLF
	inTrailer
)

// maxFollowedHeader bounds the header block kept; net/http refuses
// bigger ones (MaxHeaderBytes is 64 KiB).
const maxFollowedHeader = 64<<10 + 4096

func (f *framer) feed(p []byte, notes []framing) []framing {
	for len(p) > 0 && !f.lost {
		switch f.state {
		case inHeader:
			f.hdr = append(f.hdr, p...)
			end, next := headerEnd(f.hdr)
			if end < 0 {
				if len(f.hdr) > maxFollowedHeader {
					f.lost = true
				}
				return notes
			}
			rest := f.hdr[next:]
			note, cl, chunked, ok := parseFraming(f.hdr[:end])
			notes = append(notes, note)
			p = append([]byte(nil), rest...)
			f.hdr = f.hdr[:0]
			switch {
			case !ok:
				f.lost = true
			case chunked:
				f.state = inChunkSize
			case cl > 0:
				f.state, f.left = inBody, cl
			}
		case inBody, inChunkData:
			n := int64(len(p))
			if n > f.left {
				n = f.left
			}
			p, f.left = p[n:], f.left-n
			if f.left == 0 {
				if f.state == inBody {
					f.state = inHeader
				} else {
					f.state = inChunkCRLF
				}
			}
		case inChunkCRLF:
			// The CRLF after a chunk's data: two bytes.
			f.line = append(f.line, p[0])
			p = p[1:]
			if len(f.line) == 2 {
				if string(f.line) != "\r\n" {
					f.lost = true
				}
				f.line, f.state = f.line[:0], inChunkSize
			}
		case inChunkSize, inTrailer:
			i := bytes.IndexByte(p, '\n')
			if i < 0 {
				f.line = append(f.line, p...)
				if len(f.line) > 4096 {
					f.lost = true
				}
				return notes
			}
			f.line = append(f.line, p[:i+1]...)
			p = p[i+1:]
			line := strings.TrimRight(string(f.line), "\r\n")
			f.line = f.line[:0]
			if f.state == inTrailer {
				if line == "" {
					f.state = inHeader
				}
				continue
			}
			size, _, _ := strings.Cut(line, ";")
			n, err := strconv.ParseInt(strings.TrimSpace(size), 16, 64)
			switch {
			case err != nil || n < 0:
				f.lost = true
			case n == 0:
				f.state = inTrailer
			default:
				f.state, f.left = inChunkData, n
			}
		}
	}
	return notes
}

// headerEnd finds the blank line that ends the header block in b, CRLF
// or bare LF (which net/http also takes): the block's end and where the
// body starts, or -1.
func headerEnd(b []byte) (end, next int) {
	for i := bytes.IndexByte(b, '\n'); i >= 0; {
		j := i + 1
		if j < len(b) && b[j] == '\r' {
			j++
		}
		if j < len(b) && b[j] == '\n' {
			return i + 1, j + 1
		}
		if j >= len(b) {
			return -1, 0
		}
		k := bytes.IndexByte(b[i+1:], '\n')
		if k < 0 {
			return -1, 0
		}
		i += 1 + k
	}
	return -1, 0
}

// parseFraming reads a header block (request line and fields, without the
// final blank line): what to note, and the body's framing as net/http
// would apply it (chunked wins over a length). ok is false when the
// block cannot be followed, and nothing more is noted on the connection.
func parseFraming(block []byte) (note framing, cl int64, chunked, ok bool) {
	lines := strings.Split(string(block), "\n")
	hasCL, hasTE := false, false
	for _, l := range lines[1:] {
		l = strings.TrimSuffix(l, "\r")
		if l == "" {
			continue
		}
		if l[0] == ' ' || l[0] == '\t' {
			note.fold = true
			continue
		}
		name, val, found := strings.Cut(l, ":")
		if !found {
			return note, 0, false, false
		}
		val = strings.TrimSpace(val)
		switch strings.ToLower(strings.TrimSpace(name)) {
		case "content-length":
			n, err := strconv.ParseInt(val, 10, 64)
			if err != nil || n < 0 {
				return note, 0, false, false
			}
			hasCL, cl = true, n
		case "transfer-encoding":
			hasTE = true
			chunked = strings.HasSuffix(strings.ToLower(val), "chunked")
		}
	}
	note.clAndTE = hasCL && hasTE
	if hasTE && !chunked {
		return note, 0, false, false // net/http refuses it, and stops reading
	}
	return note, cl, chunked, true
}

// framedListener wraps each accepted connection in a framedConn.
type framedListener struct{ net.Listener }

func (l framedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &framedConn{Conn: c}, nil
}

// framedOf returns the framedConn beneath c, if any.
func framedOf(c net.Conn) *framedConn {
	for c != nil {
		if fc, ok := c.(*framedConn); ok {
			return fc
		}
		u, ok := c.(interface{ NetConn() net.Conn })
		if !ok {
			return nil
		}
		c = u.NetConn()
	}
	return nil
}

type framedKey struct{}

// withFramed keeps c's framedConn in ctx for the front door.
func withFramed(ctx context.Context, c net.Conn) context.Context {
	if fc := framedOf(c); fc != nil {
		return context.WithValue(ctx, framedKey{}, fc)
	}
	return ctx
}

// nextFraming is what was noticed about the request r, on a followed
// connection.
func nextFraming(r *http.Request) framing {
	if fc, ok := r.Context().Value(framedKey{}).(*framedConn); ok {
		return fc.next()
	}
	return framing{}
}
