package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"
)

// streamBody asks the fake upstream for SSE.
const streamBody = `{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"hi"}]}`

// errNoDone marks a stream that ended cleanly without its [DONE] event.
var errNoDone = errors.New("clean end of body without [DONE]")

// streamObs is what a client saw of one SSE stream.
type streamObs struct {
	ttfb       time.Duration   // request sent → first body byte
	delays     []time.Duration // per event: arrival − upstream send time
	events     int
	eventReads int // reads that completed at least one event
	done       bool
	end        time.Time // when the body ended (EOF or error)
	endErr     error     // nil on a clean end
	arrivals   []time.Time
}

// openStream starts an SSE request on v with the fake upstream's query.
func openStream(ctx context.Context, v *variant, query string) (*http.Response, time.Time, error) {
	start := time.Now()
	hc := &http.Client{Transport: v.client.Transport} // no overall timeout: streams are bounded by ctx
	resp, err := hc.Do(v.request(ctx, streamBody, query))
	if err != nil {
		return nil, start, err
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		resp.Body.Close()
		return nil, start, fmt.Errorf("%s: stream status %d: %s", v.name, resp.StatusCode, bytes.TrimSpace(b))
	}
	return resp, start, nil
}

// readEvents reads body to its end, timing each read and each complete
// event in it. progress (if not nil) gets the event count after each read
// that completed one.
func readEvents(body io.Reader, start time.Time, progress chan<- int) *streamObs {
	o := &streamObs{}
	buf := make([]byte, 64<<10)
	var carry []byte
	for {
		n, err := body.Read(buf)
		now := time.Now()
		if n > 0 {
			if o.ttfb == 0 {
				o.ttfb = now.Sub(start)
			}
			carry = append(carry, buf[:n]...)
			k := o.events
			carry = o.parse(carry, now)
			if o.events > k {
				o.eventReads++
				if progress != nil {
					select {
					case progress <- o.events:
					default:
					}
				}
			}
		}
		if err != nil {
			o.end = now
			if !errors.Is(err, io.EOF) {
				o.endErr = err
			} else if !o.done {
				o.endErr = errNoDone
			}
			return o
		}
	}
}

// parse consumes the complete events at the head of b and returns the rest.
func (o *streamObs) parse(b []byte, now time.Time) []byte {
	for {
		i := bytes.Index(b, []byte("\n\n"))
		if i < 0 {
			return b
		}
		ev := b[:i]
		b = b[i+2:]
		if bytes.Equal(ev, []byte("data: [DONE]")) {
			o.done = true
			continue
		}
		rest, ok := bytes.CutPrefix(ev, []byte(eventPrefix))
		if !ok {
			continue
		}
		if j := bytes.IndexByte(rest, '"'); j > 0 {
			if sent, err := strconv.ParseInt(string(rest[:j]), 10, 64); err == nil {
				o.delays = append(o.delays, time.Duration(now.UnixNano()-sent))
			}
		}
		o.events++
		o.arrivals = append(o.arrivals, now)
	}
}

// sseResult is one variant's streaming numbers.
type sseResult struct {
	ttfb, delay  *sample
	events       int
	eventReads   int
	incomplete   int
	firstErr     string // why the first incomplete stream ended
	streamMillis *sample
}

// sseRun streams n events every `every` per stream, `streams` times per
// variant, interleaved.
func sseRun(ctx context.Context, vs []*variant, streams, n int, every time.Duration) (map[string]*sseResult, error) {
	out := map[string]*sseResult{}
	for _, v := range vs {
		out[v.name] = &sseResult{ttfb: &sample{}, delay: &sample{}, streamMillis: &sample{}}
	}
	q := fmt.Sprintf("events=%d&every=%s&complete=1", n, every)
	for round := range streams + 1 { // round 0 warms up and is discarded
		for _, v := range rotate(vs, round) {
			resp, start, err := openStream(ctx, v, q)
			if err != nil {
				return nil, err
			}
			o := readEvents(resp.Body, start, nil)
			resp.Body.Close()
			if round == 0 {
				continue
			}
			r := out[v.name]
			r.ttfb.add(o.ttfb)
			for _, d := range o.delays {
				r.delay.add(d)
			}
			r.events += o.events
			r.eventReads += o.eventReads
			r.streamMillis.add(o.end.Sub(start))
			if !o.done || o.endErr != nil || o.events != n {
				r.incomplete++
				if r.firstErr == "" {
					r.firstErr = fmt.Sprintf("%d/%d events after %s, then %v", o.events, n, o.end.Sub(start).Round(time.Millisecond), o.endErr)
				}
			}
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
	}
	return out, nil
}
