package daemon

import (
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"unicode/utf8"
)

// The WebSocket framing of RFC 6455, as much of it as the relay needs: it
// reads each direction's frames, reassembles fragmented messages, and
// writes every message again as one frame (an intermediary may change the
// fragmentation of a message when no extension is in use, §5.4). No
// extension is ever negotiated, since the daemon never offers one, so the
// reserved bits must be 0 and a payload is the plain bytes the sensors read.

// wsOp is a frame's opcode (RFC 6455 §5.2).
type wsOp byte

const (
	opContinue wsOp = 0x0
	opText     wsOp = 0x1
	opBinary   wsOp = 0x2
	opClose    wsOp = 0x8
	opPing     wsOp = 0x9
	opPong     wsOp = 0xA
)

// control reports whether op is a control frame's opcode.
func (op wsOp) control() bool { return op&0x8 != 0 }

// Close codes (RFC 6455 §7.4, and 1013 from the IANA registry).
const (
	closeNormal    = 1000
	closeGoingAway = 1001
	closeProtocol  = 1002
	closeNoStatus  = 1005 // never on the wire: a close frame with no code
	closePolicy    = 1008
	closeTooBig    = 1009
	closeTryAgain  = 1013
)

// maxControl is the largest payload of a control frame (RFC 6455 §5.5).
const maxControl = 125

// keepMessageBuf is the largest message buffer a reader keeps between
// messages: a connection that once carried a large message does not hold
// its room for the rest of its life.
const keepMessageBuf = 64 << 10

// wsGUID derives the handshake's accept value from its key (RFC 6455 §1.3).
const wsGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// wsAccept returns the Sec-WebSocket-Accept value that answers key.
func wsAccept(key string) string {
	h := sha1.Sum([]byte(key + wsGUID))
	return base64.StdEncoding.EncodeToString(h[:])
}

// wsError is a peer breaking the protocol or a bound; the relay ends the
// connection with its close code.
type wsError struct {
	code   int
	reason string
}

func (e *wsError) Error() string { return fmt.Sprintf("websocket: %s (close %d)", e.reason, e.code) }

func protocolError(format string, a ...any) *wsError {
	return &wsError{code: closeProtocol, reason: fmt.Sprintf(format, a...)}
}

// wsReader parses one direction's bytes into messages and control frames.
// It holds at most one message (of at most max bytes), one control payload
// and one frame header, whatever lengths the frames declare: its memory
// grows with the bytes that arrive, never with a length a peer claims.
type wsReader struct {
	masked bool // frames must be masked (the agent's), or must not be (the upstream's)
	max    int  // the largest message payload accepted

	hdr  [14]byte // the frame header being read
	nh   int
	open bool // a frame's header is in and its payload is not
	op   wsOp
	fin  bool
	key  [4]byte
	kpos int   // the position in key of the next payload byte
	left int64 // the open frame's payload bytes still to come

	msgOp wsOp   // the open message's opcode; 0 when none is open
	msg   []byte // the open message's payload so far, unmasked
	ctl   []byte // the open control frame's payload, unmasked

	frames int64 // frames read
}

// feed parses p, calling fn with each complete message (opText or
// opBinary, with its whole payload) and each control frame, in the order
// they end. A payload is valid until fn returns. feed stops at fn's first
// error, or with a *wsError when the peer breaks the protocol or a bound;
// the reader is not usable after either.
func (r *wsReader) feed(p []byte, fn func(op wsOp, payload []byte) error) error {
	for len(p) > 0 {
		if !r.open {
			n, done := r.readHeader(p)
			p = p[n:]
			if !done {
				return nil
			}
			if err := r.begin(); err != nil {
				return err
			}
		}
		n := int(min(r.left, int64(len(p))))
		r.payload(p[:n])
		p = p[n:]
		if r.left == 0 {
			if err := r.end(fn); err != nil {
				return err
			}
		}
	}
	return nil
}

// readHeader takes header bytes from p. It returns how many it took and
// whether the header is complete.
func (r *wsReader) readHeader(p []byte) (int, bool) {
	n := 0
	for {
		need := 2
		if r.nh >= 2 {
			need = headerLen(r.hdr[1])
		}
		if r.nh == need {
			return n, true
		}
		if n == len(p) {
			return n, false
		}
		r.hdr[r.nh] = p[n]
		r.nh++
		n++
	}
}

// headerLen is the length of a frame header whose second byte is b1.
func headerLen(b1 byte) int {
	n := 2
	switch b1 & 0x7f {
	case 126:
		n += 2
	case 127:
		n += 8
	}
	if b1&0x80 != 0 {
		n += 4
	}
	return n
}

// begin checks the header just read and opens its frame.
func (r *wsReader) begin() error {
	b0, b1, hl := r.hdr[0], r.hdr[1], r.nh
	r.nh = 0
	op, fin, n := wsOp(b0&0x0f), b0&0x80 != 0, int64(b1&0x7f)
	switch n {
	case 126:
		n = int64(binary.BigEndian.Uint16(r.hdr[2:4]))
	case 127:
		u := binary.BigEndian.Uint64(r.hdr[2:10])
		if u>>63 != 0 {
			return protocolError("frame length has its most significant bit set")
		}
		n = int64(u)
	}
	if b0&0x70 != 0 {
		return protocolError("reserved bits set, but no extension was negotiated")
	}
	switch masked := b1&0x80 != 0; {
	case r.masked && !masked:
		return protocolError("frame from the client is not masked")
	case !r.masked && masked:
		return protocolError("frame from the server is masked")
	case masked:
		copy(r.key[:], r.hdr[hl-4:hl])
	}
	switch op {
	case opClose, opPing, opPong:
		if !fin {
			return protocolError("fragmented control frame")
		}
		if n > maxControl {
			return protocolError("control frame of %d bytes, over %d", n, maxControl)
		}
		r.ctl = r.ctl[:0]
	case opText, opBinary:
		if r.msgOp != 0 {
			return protocolError("new message inside a fragmented one")
		}
		r.msgOp, r.msg = op, r.msg[:0]
	case opContinue:
		if r.msgOp == 0 {
			return protocolError("continuation frame outside a message")
		}
	default:
		return protocolError("unknown opcode %#x", byte(op))
	}
	if !op.control() && n > int64(r.max-len(r.msg)) {
		return &wsError{code: closeTooBig, reason: fmt.Sprintf("message over %d bytes", r.max)}
	}
	r.open, r.op, r.fin, r.left, r.kpos = true, op, fin, n, 0
	r.frames++
	return nil
}

// payload takes p, the open frame's next payload bytes.
func (r *wsReader) payload(p []byte) {
	if len(p) == 0 {
		return
	}
	dst := &r.msg
	if r.op.control() {
		dst = &r.ctl
	}
	i := len(*dst)
	*dst = append(*dst, p...)
	if r.masked {
		r.kpos = maskBytes(r.key, r.kpos, (*dst)[i:])
	}
	r.left -= int64(len(p))
}

// end closes the open frame and hands fn what it completes.
func (r *wsReader) end(fn func(wsOp, []byte) error) error {
	r.open = false
	if r.op.control() {
		return fn(r.op, r.ctl)
	}
	if !r.fin {
		return nil
	}
	op := r.msgOp
	r.msgOp = 0
	err := fn(op, r.msg)
	if cap(r.msg) > keepMessageBuf {
		r.msg = nil
	}
	return err
}

// maskBytes XORs b with key, from key position pos on (RFC 6455 §5.3),
// and returns the key position after b. Masking and unmasking are the
// same operation.
func maskBytes(key [4]byte, pos int, b []byte) int {
	if len(b) >= 8 {
		var k [8]byte
		for i := range k {
			k[i] = key[(pos+i)&3]
		}
		kw := binary.LittleEndian.Uint64(k[:])
		for len(b) >= 8 { // eight bytes a step leave the key position as it was
			binary.LittleEndian.PutUint64(b, binary.LittleEndian.Uint64(b)^kw)
			b = b[8:]
		}
	}
	for i := range b {
		b[i] ^= key[(pos+i)&3]
	}
	return (pos + len(b)) & 3
}

// appendFrame appends to dst one whole frame (FIN set) of op carrying
// payload, masked with a fresh random key when mask is set, as every frame
// to a server must be (RFC 6455 §5.3).
func appendFrame(dst []byte, op wsOp, payload []byte, mask bool) []byte {
	var b1 byte
	if mask {
		b1 = 0x80
	}
	dst = append(dst, 0x80|byte(op))
	switch n := len(payload); {
	case n < 126:
		dst = append(dst, b1|byte(n))
	case n <= 0xffff:
		dst = binary.BigEndian.AppendUint16(append(dst, b1|126), uint16(n))
	default:
		dst = binary.BigEndian.AppendUint64(append(dst, b1|127), uint64(n))
	}
	if !mask {
		return append(dst, payload...)
	}
	var key [4]byte
	rand.Read(key[:]) // never fails (crypto/rand)
	dst = append(dst, key[:]...)
	i := len(dst)
	dst = append(dst, payload...)
	maskBytes(key, 0, dst[i:])
	return dst
}

// closePayload is a close frame's payload: code, then reason cut to fit a
// control frame at a UTF-8 boundary. closeNoStatus is the empty payload.
func closePayload(code int, reason string) []byte {
	if code == closeNoStatus {
		return nil
	}
	if len(reason) > maxControl-2 {
		reason = reason[:maxControl-2]
		for len(reason) > 0 && !utf8.ValidString(reason) {
			reason = reason[:len(reason)-1]
		}
	}
	return append(binary.BigEndian.AppendUint16(make([]byte, 0, 2+len(reason)), uint16(code)), reason...)
}

// closeCode returns the code of a close frame's payload (closeNoStatus
// for an empty one), refusing what may not be sent on the wire (RFC 6455
// §7.4): one byte, a reserved or unassigned code, a reason that is not
// UTF-8.
func closeCode(payload []byte) (int, error) {
	switch len(payload) {
	case 0:
		return closeNoStatus, nil
	case 1:
		return 0, protocolError("close frame of one byte")
	}
	c := int(binary.BigEndian.Uint16(payload))
	switch {
	case c >= 1000 && c <= 1003, c >= 1007 && c <= 1014, c >= 3000 && c <= 4999:
	default:
		return 0, protocolError("close code %d may not be sent", c)
	}
	if !utf8.Valid(payload[2:]) {
		return 0, protocolError("close reason is not UTF-8")
	}
	return c, nil
}
