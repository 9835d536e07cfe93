package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/tokfence/tokfence/capability"
	"github.com/tokfence/tokfence/daemon/audit"
	"github.com/tokfence/tokfence/sensor"
)

// wsCloseGrace bounds how long the agent has to take the close frame the
// daemon sends when it ends a connection itself (a kill, a blocked
// message): ample for an agent that reads, and an agent that stopped
// reading cannot keep its connection past it.
const wsCloseGrace = 2 * time.Second

// errRelayClosed ends ReverseProxy's copy out of the relay. It is not
// io.EOF on purpose: on an error ReverseProxy closes the agent's
// connection at once, where on EOF it would half-close it and wait for the
// agent to hang up.
var errRelayClosed = errors.New("websocket relay closed")

// errStop stops a reader's feed once the relay has ended.
var errStop = errors.New("websocket relay ended")

// wsRelay is a switched connection as ReverseProxy sees it, the body of
// the 101 reply: ReverseProxy copies the agent's bytes into Write, and
// what Read returns to the agent, each from a goroutine of its own. The
// relay parses every frame both ways, scans every message with one sensor
// stream per direction, so that a secret split across two messages is
// found on the second, and writes each message on as one frame.
//
// Invariants: the upstream is sent only messages the request sensor
// cleared and admitMessage admitted, and the agent only messages the
// response sensor cleared. Once the relay has ended, nothing more goes
// either way but one close frame to the agent. The relay never hands out
// the upstream connection: ReverseProxy would splice around it.
type wsRelay struct {
	d  *Daemon
	f  *forward
	up io.ReadWriteCloser

	// The agent-to-upstream direction: Write's, under inMu.
	inMu        sync.Mutex
	fromAgent   wsReader
	reqScan     *sensor.Stream
	inBuf, wbuf []byte
	agentClosed bool // the agent sent its close frame
	msgsIn      int64
	bytesIn     int64

	// The upstream-to-agent direction: Read's, under outMu.
	outMu       sync.Mutex
	fromUp      wsReader
	respScan    *sensor.Stream
	outBuf      []byte
	q           agentQueue
	upDone      bool // the upstream connection is closed or failed
	closeSent   bool // a close frame is queued for the agent
	finalQueued bool
	msgsOut     int64
	bytesOut    int64
	usage       audit.Usage
	usageSeen   int
	cost        int64
	unpriced    bool
	price       string // the price table entry of the last priced response

	// Shared, under mu.
	mu        sync.Mutex
	agent     net.Conn // the agent's connection, once ReverseProxy has hijacked it
	final     []byte   // the close payload end chose for the agent
	finished  bool
	model     string // the model of the latest admitted call
	calls     int64
	closeCode int
	closeBy   string // who closed first: agent, upstream or daemon
	closeWhy  string // the daemon's reason, when it ended the connection

	upClose sync.Once
}

func (d *Daemon) newRelay(f *forward, up io.ReadWriteCloser) *wsRelay {
	m := d.sensors.Load()
	return &wsRelay{d: d, f: f, up: up,
		fromAgent: wsReader{masked: true, max: int(d.cfg.MaxBodyBytes)},
		fromUp:    wsReader{max: int(d.cfg.MaxBodyBytes)},
		reqScan:   m.NewStream(sensor.Request, "application/json"),
		// Responses API events are SSE events without the SSE framing:
		// the response sensor joins their text deltas as in a stream.
		respScan: m.NewStream(sensor.Response, "text/event-stream"),
	}
}

// attach gives the relay the agent's connection when ReverseProxy hijacks
// it, so that the close frame of end cannot block for longer than
// wsCloseGrace.
func (r *wsRelay) attach(c net.Conn) {
	r.mu.Lock()
	r.agent = c
	ended := r.final != nil
	r.mu.Unlock()
	if ended {
		_ = c.SetWriteDeadline(time.Now().Add(wsCloseGrace))
	}
}

// Write takes the agent's bytes. It does not fail for what the agent
// sends: a refusal ends the relay (Read then delivers the close frame and
// stops the copying), and what arrives after that is dropped. It fails
// only when the upstream cannot be written to.
func (r *wsRelay) Write(p []byte) (int, error) {
	r.inMu.Lock()
	defer r.inMu.Unlock()
	if r.stopped() {
		return len(p), nil
	}
	if context.Cause(r.f.sess.Context()) != nil {
		r.end(closePolicy, "session was killed")
		return len(p), nil
	}
	err := r.fromAgent.feed(p, r.agentEvent)
	var we *wsError
	switch {
	case errors.As(err, &we):
		r.end(we.code, we.reason)
	case err != nil && !errors.Is(err, errStop):
		return 0, err
	}
	return len(p), nil
}

func (r *wsRelay) agentEvent(op wsOp, p []byte) error {
	if r.agentClosed {
		return nil // nothing may follow a close frame (RFC 6455 §5.5.1)
	}
	switch op {
	case opPing, opPong:
		out, blocked := r.scanControl(sensor.Request, p)
		if blocked != "" {
			return r.block("message", blocked)
		}
		return r.send(op, out)
	case opClose:
		code, reason, blocked, err := r.scanClose(sensor.Request, p)
		if err != nil {
			return err
		}
		if blocked != "" {
			return r.block("close frame", blocked)
		}
		r.agentClosed = true
		r.noteClose(code, "agent")
		return r.send(opClose, closePayload(code, reason))
	}
	r.msgsIn++
	r.bytesIn += int64(len(p))
	out, blocked := r.scan(r.reqScan, p, &r.inBuf)
	if blocked != "" {
		return r.block("message", blocked)
	}
	model, call, refusal := r.d.checkMessage(r.f, p)
	if refusal != nil {
		r.end(closeFor(refusal), refusal.Message)
		return errStop
	}
	if call {
		r.mu.Lock()
		r.model, r.calls = model, r.calls+1
		r.mu.Unlock()
	}
	return r.send(op, out)
}

// send writes one frame to the upstream, masked as a client's must be.
func (r *wsRelay) send(op wsOp, payload []byte) error {
	r.wbuf = appendFrame(r.wbuf[:0], op, payload, true)
	_, err := r.up.Write(r.wbuf)
	if cap(r.wbuf) > keepMessageBuf {
		r.wbuf = nil
	}
	return err
}

// Read returns the agent's next bytes: the frames the response sensor
// cleared and, once the relay has ended, the close frame; then
// errRelayClosed.
func (r *wsRelay) Read(p []byte) (int, error) {
	r.outMu.Lock()
	defer r.outMu.Unlock()
	for {
		if r.isFinished() {
			return 0, errRelayClosed
		}
		r.queueFinal()
		if r.q.len() > 0 {
			return r.q.read(p), nil
		}
		if r.upDone || r.finalQueued {
			return 0, errRelayClosed
		}
		if context.Cause(r.f.sess.Context()) != nil {
			r.end(closePolicy, "session was killed")
			continue
		}
		// p is free: what was queued has been copied out. The reader
		// copies what it keeps, so p is free again after feed.
		n, err := r.up.Read(p)
		if n > 0 {
			r.f.idle.Reset(r.d.cfg.UpstreamIdleTimeout.Duration)
			var we *wsError
			if err := r.fromUp.feed(p[:n], r.upEvent); errors.As(err, &we) {
				r.end(we.code, "upstream: "+we.reason)
			}
		}
		if err != nil {
			r.upDone = true
		}
	}
}

func (r *wsRelay) upEvent(op wsOp, p []byte) error {
	if r.closeSent {
		return nil
	}
	switch op {
	case opPing, opPong:
		out, blocked := r.scanControl(sensor.Response, p)
		if blocked != "" {
			return r.block("reply", blocked)
		}
		r.q.push(op, out)
		return nil
	case opClose:
		code, reason, blocked, err := r.scanClose(sensor.Response, p)
		if err != nil {
			return err
		}
		if blocked != "" {
			return r.block("close frame", blocked)
		}
		r.noteClose(code, "upstream")
		r.q.push(opClose, closePayload(code, reason))
		r.closeSent = true
		return nil
	}
	r.msgsOut++
	r.bytesOut += int64(len(p))
	out, blocked := r.scan(r.respScan, p, &r.outBuf)
	if blocked != "" {
		return r.block("reply", blocked)
	}
	r.meter(p)
	r.q.push(op, out)
	return nil
}

// queueFinal puts the close frame of end on the agent's queue, in place
// of the frames not yet begun. An upstream close frame already queued
// goes instead.
func (r *wsRelay) queueFinal() {
	if r.finalQueued {
		return
	}
	r.mu.Lock()
	final := r.final
	r.mu.Unlock()
	if final == nil || r.closeSent {
		r.finalQueued = final != nil
		return
	}
	r.finalQueued, r.closeSent = true, true
	r.q.cut()
	r.q.push(opClose, final)
}

// end stops the relay for a reason of the daemon's: nothing more goes
// either way, the agent is sent a close frame with code and reason, and
// the upstream connection is closed (which wakes Read).
func (r *wsRelay) end(code int, reason string) {
	r.mu.Lock()
	if r.final != nil || r.finished {
		r.mu.Unlock()
		return
	}
	r.final = closePayload(code, reason)
	if r.closeBy == "" {
		r.closeCode, r.closeBy = code, "daemon"
	}
	r.closeWhy = reason
	conn := r.agent
	r.mu.Unlock()
	if conn != nil {
		_ = conn.SetWriteDeadline(time.Now().Add(wsCloseGrace))
	}
	r.closeUp()
	r.d.log.Info("websocket closed by the daemon", "session", r.f.rec.Session, "provider", r.f.p.Name, "code", code, "reason", reason)
}

func (r *wsRelay) noteClose(code int, by string) {
	r.mu.Lock()
	if r.closeBy == "" {
		r.closeCode, r.closeBy = code, by
	}
	r.mu.Unlock()
}

// Close is called by ReverseProxy when the request's context ends (a
// kill, the upstream idle timeout) and when it is done with the
// connection.
func (r *wsRelay) Close() error {
	switch cause := context.Cause(r.f.ctx); {
	case errors.Is(cause, capability.ErrRevoked):
		r.end(closePolicy, "session was killed")
	case errors.Is(cause, errUpstreamIdle):
		r.end(closeGoingAway, fmt.Sprintf("upstream sent nothing for %s", r.d.cfg.UpstreamIdleTimeout.Duration))
	}
	r.closeUp()
	return nil
}

func (r *wsRelay) closeUp() { r.upClose.Do(func() { _ = r.up.Close() }) }

// stopped reports whether the relay has ended or finished.
func (r *wsRelay) stopped() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.final != nil || r.finished
}

func (r *wsRelay) isFinished() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.finished
}

// finish runs when ReverseProxy is done with the connection (its copy
// goroutines may still be leaving): it stops the relay, waits until
// neither direction is inside it, settles the sensor streams and notes
// what was counted in the request's record, which finishRecord writes.
func (r *wsRelay) finish() {
	r.closeUp()
	r.mu.Lock()
	r.finished = true
	r.mu.Unlock()
	r.inMu.Lock()
	defer r.inMu.Unlock()
	r.outMu.Lock()
	defer r.outMu.Unlock()
	for _, s := range []*sensor.Stream{r.reqScan, r.respScan} {
		_, hits := s.Close() // a candidate still open at the end is audited; its bytes are gone
		r.hits(hits)
		s.Release()
	}
	r.record()
}

// record notes the connection's counts, usage and close in its record.
func (r *wsRelay) record() {
	rec := r.f.rec
	r.mu.Lock()
	model, calls, code, by, why := r.model, r.calls, r.closeCode, r.closeBy, r.closeWhy
	r.mu.Unlock()
	if r.usageSeen == 0 && calls > 0 {
		// As for a reply without usage: estimated from the bytes.
		r.account(model, audit.Usage{InputTokens: (r.bytesIn + 3) / 4, OutputTokens: (r.bytesOut + 3) / 4, Estimated: true})
	}
	rec.Model, rec.BytesIn, rec.BytesOut, rec.metered = model, r.bytesIn, r.bytesOut, true
	if rec.Detail == nil {
		rec.Detail = map[string]string{}
	}
	det := rec.Detail
	for k, v := range map[string]int64{"frames_in": r.fromAgent.frames, "frames_out": r.fromUp.frames,
		"messages_in": r.msgsIn, "messages_out": r.msgsOut, "calls": calls} {
		det[k] = strconv.FormatInt(v, 10)
	}
	if by != "" {
		det["close"] = strconv.Itoa(code) + " by " + by
	}
	if why != "" {
		rec.Error = "closed: " + why
	}
	if r.usageSeen > 0 {
		u := r.usage
		rec.Usage = &u
		det["cost_micro_usd"] = strconv.FormatInt(r.cost, 10)
		if r.price != "" {
			det["price"] = r.price
		}
		if r.unpriced {
			det["unpriced"] = "true"
		}
	}
}

// agentQueue holds the frames cleared for the agent until Read hands them
// out.
type agentQueue struct {
	buf  []byte
	ends []int // where each frame ends in buf
	off  int   // bytes of buf handed out
}

func (q *agentQueue) len() int { return len(q.buf) - q.off }

func (q *agentQueue) push(op wsOp, payload []byte) {
	q.buf = appendFrame(q.buf, op, payload, false)
	q.ends = append(q.ends, len(q.buf))
}

func (q *agentQueue) read(p []byte) int {
	n := copy(p, q.buf[q.off:])
	if q.off += n; q.off == len(q.buf) {
		q.buf, q.ends, q.off = q.buf[:0], q.ends[:0], 0
		if cap(q.buf) > keepMessageBuf {
			q.buf = nil
		}
	}
	return n
}

// cut drops the frames not yet begun, keeping the rest of the one being
// handed out.
func (q *agentQueue) cut() {
	start := 0
	for i, e := range q.ends {
		if q.off < e {
			if q.off > start {
				i, start = i+1, e // half handed out: it goes whole
			}
			q.buf, q.ends = q.buf[:start], q.ends[:i]
			return
		}
		start = e
	}
}
