package daemon

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/tokfence/tokfence/daemon/audit"
	"github.com/tokfence/tokfence/daemon/meter"
	"github.com/tokfence/tokfence/policy"
	"github.com/tokfence/tokfence/sensor"
)

// scanRequest runs the request sensor over the buffered body, the header
// values and the query string. A hit is audited and fed to the session's risk machine; a block
// decision refuses the request before a byte goes upstream, otherwise the
// redacted body becomes f.body, what is forwarded.
func (d *Daemon) scanRequest(w http.ResponseWriter, r *http.Request, f *forward, body []byte) bool {
	m := d.sensors.Load()
	s := m.NewStream(sensor.Request, r.Header.Get("Content-Type"))
	// Write's and Close's results are only valid until the next call. A
	// Write without hits released its input unchanged (only a hit changes
	// bytes), so nothing need be copied unless a hit comes: the common
	// case forwards body itself.
	fwd, h := s.Write(body)
	var out []byte
	released := len(fwd)
	if len(h) > 0 {
		out = append(out, fwd...)
	}
	hits := append([]sensor.Hit(nil), h...)
	fwd, h = s.Close()
	if len(hits) > 0 || len(h) > 0 {
		if out == nil {
			out = append(out, body[:released]...)
		}
		out = append(out, fwd...)
	}
	hits = append(hits, h...)
	s.Release()
	// Header values and the query string are scanned as one text: a
	// secret in ?q= is as much on its way out as one in a body.
	for _, h := range headerHits(m, sensor.Request, r.Header, r.URL.RawQuery, isTokenHeader) {
		// The session's own token in a header or the query is dropped
		// by forwardHeaders and forwardQuery; it is misplaced, not leaked.
		if h.Class != sensor.ClassToken || h.SecretID != f.rec.JTI {
			hits = append(hits, h.Hit)
		}
	}
	blocked := ""
	for _, h := range hits {
		if dec := d.sensorHit(f, h); dec.Block && blocked == "" {
			blocked = h.Rule
			if h.Class != sensor.ClassFormat {
				blocked = string(h.Class)
			}
		}
	}
	if blocked != "" {
		f.rec.fail(w, http.StatusForbidden, errPermission, fmt.Sprintf("request blocked: it carries a secret (%s)", blocked))
		return false
	}
	f.body = body
	if len(hits) > 0 {
		f.body = out
	}
	return true
}

func isTokenHeader(name string) bool {
	var buf [64]byte
	return tokenHeaderNames[string(appendNormHeader(buf[:0], name))]
}

// sensorHit audits one hit and applies the policy's decision. A held key
// in a response is as RED as one in a request, as the README says: the
// key the daemon injected has been reflected back towards the agent (an
// echo endpoint, an error page quoting it), which is the one way an agent
// could make an honest upstream hand it the key. It is cut out either way.
func (d *Daemon) sensorHit(f *forward, h sensor.Hit) policy.Decision {
	rec := audit.Record{Event: audit.EventSensorHit, Session: f.sess.ID, Agent: f.sess.Agent,
		Provider: f.p.Name, Path: f.rest, Rule: h.Rule, Encoding: h.Encoding, Direction: h.Direction.String(),
		Fingerprint: h.Fingerprint, Detail: map[string]string{"class": string(h.Class), "offset": fmt.Sprint(h.Offset)}}
	if h.SecretID != "" && h.Class == sensor.ClassProviderKey {
		rec.Detail["secret"] = h.SecretID
	}
	// One body repeating a secret makes a hit per repetition (7,000 in a
	// MiB of the agent's own token): each still reaches the risk machine,
	// but only the first maxAuditedHits of a request are records; the
	// request's response record counts the rest.
	if f.rec.hits++; f.rec.hits <= maxAuditedHits {
		d.appendAudit(rec)
		d.log.Warn("sensor hit", "session", rec.Session, "rule", h.Rule, "class", h.Class, "encoding", h.Encoding,
			"direction", rec.Direction, "fingerprint", h.Fingerprint)
	}
	kind := policy.SensorHit
	if h.Class == sensor.ClassCanary {
		kind = policy.Canary
	}
	return d.observe(f.sess, policy.Event{Kind: kind, Rule: h.Rule, Class: string(h.Class), Direction: h.Direction.String()}, f.rec)
}

// maxAuditedHits bounds the sensor_hit records of one request.
const maxAuditedHits = 32

// errEncodedReply refuses a reply in a content encoding the daemon did
// not ask for (it sends Accept-Encoding: identity): the sensors read
// plaintext, so what they cannot read is not forwarded.
var errEncodedReply = errors.New("upstream sent an encoded (compressed) reply the daemon did not ask for")

// scanReplyHeaders runs the response sensor over each reply header's
// values, as the request side does: an upstream that echoes the request's
// headers under a harmless name (X-Request-Headers) would otherwise hand
// the agent the injected key. A header with a hit is dropped whole.
func (d *Daemon) scanReplyHeaders(h http.Header, f *forward) {
	for _, hit := range headerHits(d.sensors.Load(), sensor.Response, h, "", nil) {
		d.sensorHit(f, hit.Hit)
		h.Del(hit.header)
	}
}

// headerHit is a sensor hit in a header value (or the query string, for
// which header is "").
type headerHit struct {
	sensor.Hit
	header string
}

// headerHits runs one sensor stream over query and the values of h but
// those skip names, a line each, and says which header each hit fell in.
// One stream for all of them: a reply has a dozen headers, and a stream
// per header would cost a dozen on every request.
func headerHits(m *sensor.Matcher, dir sensor.Direction, h http.Header, query string, skip func(string) bool) []headerHit {
	var text []byte
	var names []string
	var ends []int64 // ends[i]: offset just past the line of names[i]
	add := func(name, v string) {
		text = append(append(text, v...), '\n')
		names, ends = append(names, name), append(ends, int64(len(text)))
	}
	if query != "" {
		add("", query)
	}
	for name, vals := range h {
		if skip == nil || !skip(name) {
			for _, v := range vals {
				add(name, v)
			}
		}
	}
	if len(text) == 0 {
		return nil
	}
	st := m.NewStream(dir, "text/plain")
	defer st.Release()
	_, h1 := st.Write(text)
	hits := append([]sensor.Hit(nil), h1...) // valid only until the next call
	_, h2 := st.Close()
	hits = append(hits, h2...)
	out := make([]headerHit, 0, len(hits))
	for _, hit := range hits {
		i, _ := slices.BinarySearch(ends, hit.Offset+1)
		out = append(out, headerHit{Hit: hit, header: names[min(i, len(names)-1)]})
	}
	return out
}

// wrapResponse puts the upstream body behind the response sensor and the
// usage tap. Redaction can change the length, so the reply is re-framed.
func (d *Daemon) wrapResponse(resp *http.Response, f *forward) error {
	if ce := resp.Header.Get("Content-Encoding"); ce != "" && !strings.EqualFold(ce, "identity") || len(resp.Header.Values("Content-Encoding")) > 1 {
		resp.Body.Close()
		return fmt.Errorf("%w (%q)", errEncodedReply, ce)
	}
	d.scanReplyHeaders(resp.Header, f)
	if resp.Body == nil || resp.Body == http.NoBody {
		return nil
	}
	ct := resp.Header.Get("Content-Type")
	tap := meter.NewTap(ct)
	sb := &scanBody{src: resp.Body, stream: d.sensors.Load().NewStream(sensor.Response, ct), d: d, f: f}
	if tap.SSE() && f.stripUsage {
		sb.strip = &usageStripper{}
	}
	if !tap.SSE() && resp.ContentLength >= 0 && resp.ContentLength <= maxWholeReply {
		// A small, sized reply is scanned whole, so it keeps an exact
		// Content-Length (and is not re-framed as chunked). Room for the
		// whole body up front lets one upstream read fill it. Its usage
		// is read from what is forwarded, which differs from what the
		// upstream sent only where a secret was cut out.
		var out bytes.Buffer
		out.Grow(int(resp.ContentLength) + bytes.MinRead)
		_, err := out.ReadFrom(sb)
		sb.Close()
		if err != nil {
			return err
		}
		f.rec.Usage = tap.Whole(out.Bytes())
		d.meterResponse(f.rec)
		resp.Body = io.NopCloser(bytes.NewReader(out.Bytes()))
		resp.ContentLength = int64(out.Len())
		resp.Header.Set("Content-Length", strconv.Itoa(out.Len()))
		return nil
	}
	sb.tap = tap
	resp.Body = sb
	f.reply = sb
	resp.ContentLength = -1
	resp.Header.Del("Content-Length")
	f.streaming = true
	return nil
}

// maxWholeReply bounds a non-streaming reply read whole before forwarding:
// chat replies are kilobytes, and past this it streams like any other.
const maxWholeReply = 1 << 20

// scanBody is the response body as the agent reads it: only bytes the
// sensor has cleared, with our secrets cut out. It has no buffer of its
// own: the upstream is read into the caller's buffer (ReverseProxy's copy
// buffer), which the sensor copies into its window, and what the sensor
// clears is copied back out. An open stream thus holds one copy buffer,
// not two.
type scanBody struct {
	src     io.ReadCloser
	stream  *sensor.Stream
	d       *Daemon
	f       *forward
	tap     *meter.Tap // nil when the reader of the whole reply meters it
	pending []byte     // cleared bytes not yet read; aliases the sensor's buffers
	next    []byte     // more cleared bytes, to follow pending (see usageStripper.filter)
	eof     bool
	strip   *usageStripper
	// burst is the upstream read buffer while reads come back fuller than
	// the caller's buffer (nil otherwise); see bufpool.go.
	burst *[burstSize]byte
}

func (b *scanBody) Read(p []byte) (int, error) {
	if b.stream == nil {
		return 0, errBodyClosed
	}
	// A killed session forwards nothing more, even before the request's
	// own context (cancelled by an AfterFunc goroutine) catches up.
	if err := context.Cause(b.f.sess.Context()); err != nil {
		return 0, err
	}
	if len(p) == 0 {
		return 0, nil
	}
	for len(b.pending) == 0 {
		if len(b.next) > 0 {
			b.pending, b.next = b.next, nil
			break
		}
		if b.eof {
			return 0, io.EOF
		}
		// p is free: everything cleared so far has been copied out, and
		// pending never aliases p or the burst buffer (the sensor copies
		// what it is given).
		buf := p[:b.readSize(len(p))]
		if b.burst != nil {
			buf = b.burst[:]
		}
		n, err := b.src.Read(buf)
		b.pace(n, len(buf))
		if n > 0 {
			if b.f.idle != nil {
				b.f.idle.Reset(b.d.cfg.UpstreamIdleTimeout.Duration)
			}
			b.f.rec.BytesOut += int64(n) // as the upstream sent it
			if b.tap != nil {
				b.tap.Write(buf[:n])
			}
			fwd, hits := b.stream.Write(buf[:n])
			b.pending = fwd
			if b.strip != nil {
				b.pending, b.next = b.strip.filter(fwd)
			}
			b.hits(hits)
		}
		if err == io.EOF {
			held := slices.Concat(b.pending, b.next) // Close reuses Write's buffer
			fwd, hits := b.stream.Close()
			if b.strip != nil {
				h, t := b.strip.filter(fwd)
				fwd = slices.Concat(h, t, b.strip.flush())
			}
			b.pending, b.next = append(held, fwd...), nil
			b.hits(hits)
			b.eof = true
			if b.tap != nil {
				b.f.rec.Usage = b.tap.Usage()
				b.d.meterResponse(b.f.rec)
			}
		} else if err != nil {
			return 0, err
		}
	}
	n := copy(p, b.pending)
	b.pending = b.pending[n:]
	return n, nil
}

// readSize returns how much of a buffer of n bytes an upstream read may
// fill. A streamed reply goes to the agent one chunk per Read, flushed: the
// bytes the sensor and the usage stripper hold come out with the next
// read's, and the whole should fit, with its chunk framing, the server's
// 4 KiB write buffer. Then each upstream read costs the agent's connection
// one write, where a full 4 KiB read cost three (the buffer's worth, the
// few bytes past it at the flush, and the held bytes' own chunk).
func (b *scanBody) readSize(n int) int {
	if b.tap == nil {
		return n // read whole by wrapResponse, not flushed
	}
	held := b.stream.Held()
	if b.strip != nil {
		held += len(b.strip.ev)
	}
	return max(min(n, chunkRoom)-held, min(n, minStreamRead))
}

const (
	// chunkRoom is net/http's 4 KiB connection write buffer less a chunk's
	// size line and its closing CRLF ("ff8\r\n", "\r\n").
	chunkRoom = 4<<10 - 8
	// minStreamRead keeps reads from shrinking to nothing behind a large
	// hold: such a read is forwarded in two writes, as before.
	minStreamRead = 1 << 10
)

// pace takes a burst buffer for the next upstream read when a read of
// size bytes came back full on a streamed reply, and gives it back when a
// burst read brings no more than a plain one would: a burst lasts while
// the upstream sends faster than the agent is written to. Reading more
// never waits for more: a read returns what has arrived.
func (b *scanBody) pace(n, size int) {
	switch {
	case b.tap == nil: // read whole by wrapResponse into a buffer of its own
	case b.burst == nil && n == size:
		b.burst = burstPool.Get().(*[burstSize]byte)
	case b.burst != nil && n <= copyBufSize:
		b.dropBurst()
	}
}

func (b *scanBody) dropBurst() {
	if b.burst != nil {
		burstPool.Put(b.burst)
		b.burst = nil
	}
}

// more says whether the next Read returns at once with bytes already
// cleared: replyWriter gathers writes and skips flushes while it does.
func (b *scanBody) more() bool { return len(b.pending) > 0 || len(b.next) > 0 }

func (b *scanBody) hits(hs []sensor.Hit) {
	for _, h := range hs {
		b.d.sensorHit(b.f, h)
	}
}

// Close closes the upstream body and hands the sensor stream back for
// reuse; nothing read from it may be used after (ReverseProxy and
// wrapResponse are done with it by then).
func (b *scanBody) Close() error {
	if b.stream != nil {
		b.stream.Release()
		b.stream, b.pending, b.next = nil, nil, nil
	}
	b.dropBurst()
	return b.src.Close()
}

// errBodyClosed is a read of a reply body after its Close.
var errBodyClosed = errors.New("read of a closed reply body")
