package main

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"
)

// openResult is memory with many streams held open through one proxy.
type openResult struct {
	Variant        string  `json:"variant"`
	Streams        int     `json:"streams"`
	Opened         int     `json:"opened"`
	IdleRSSKiB     int64   `json:"idle_rss_kib,omitempty"` // right after start (Tokfence only)
	BeforeRSSKiB   int64   `json:"before_rss_kib"`         // just before opening, after the other phases
	OpenRSSKiB     int64   `json:"open_rss_kib"`
	OpenHWMKiB     int64   `json:"open_hwm_kib"`
	PerStreamKiB   float64 `json:"per_stream_kib"`
	Threads        int64   `json:"os_threads"`
	Goroutines     int     `json:"goroutines,omitempty"`
	GoroutineNote  string  `json:"goroutine_note,omitempty"`
	OpenSeconds    float64 `json:"open_seconds"`
	FirstOpenError string  `json:"first_open_error,omitempty"`
}

// holdOpen opens n long SSE streams through v (64 opening at a time),
// waits until each has delivered its first event, lets the process settle,
// and reads its memory from /proc. count, if not nil, is called while the
// streams are still open (to count goroutines).
func holdOpen(ctx context.Context, v *variant, pid int, n int, count func() (int, string)) openResult {
	res := openResult{Variant: v.name, Streams: n}
	res.BeforeRSSKiB, _, _, _ = procStatus(pid)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg, ready sync.WaitGroup
	var mu sync.Mutex
	sem := make(chan struct{}, 64)
	start := time.Now()
	for range n {
		wg.Add(1)
		ready.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			resp, _, err := openStream(ctx, v, "hold=120s")
			if err == nil {
				_, err = io.ReadFull(resp.Body, make([]byte, 1)) // the first event has begun
			}
			<-sem
			mu.Lock()
			if err == nil {
				res.Opened++
			} else if res.FirstOpenError == "" {
				res.FirstOpenError = err.Error()
			}
			mu.Unlock()
			ready.Done()
			if err != nil {
				return
			}
			io.Copy(io.Discard, resp.Body) // an event a second, until cancel
			resp.Body.Close()
		}()
	}
	waitTimeout(&ready, 90*time.Second)
	res.OpenSeconds = round2(time.Since(start).Seconds())
	time.Sleep(2 * time.Second) // let every stream's first event pass through and the runtime settle
	res.OpenRSSKiB, res.OpenHWMKiB, res.Threads, _ = procStatus(pid)
	if res.Opened > 0 {
		res.PerStreamKiB = round2(float64(res.OpenRSSKiB-res.BeforeRSSKiB) / float64(res.Opened))
	}
	if count != nil {
		res.Goroutines, res.GoroutineNote = count()
	}
	cancel()
	waitTimeout(&wg, 30*time.Second)
	return res
}

func waitTimeout(wg *sync.WaitGroup, d time.Duration) bool {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
		return true
	case <-time.After(d):
		return false
	}
}

// killResult is the time from a kill to the cut of a live stream.
type killResult struct {
	Via        string    `json:"via"` // "control-api" or "cli"
	Reps       int       `json:"reps"`
	Cut        int       `json:"cut"` // streams that ended with an error, as a cut must
	MedianMS   float64   `json:"median_ms"`
	MaxMS      float64   `json:"max_ms"`
	KillCallMS float64   `json:"kill_call_median_ms"` // the kill request (or CLI run) itself
	LateEvents int       `json:"late_events"`         // events that arrived after kill returned
	AllMS      []float64 `json:"all_ms"`
	FirstError string    `json:"first_error,omitempty"`
}

// killToCut opens a long stream on a fresh session reps times, kills the
// session once events flow, and times until the client's read fails.
func killToCut(ctx context.Context, v *variant, reps int, viaCLI bool) killResult {
	res := killResult{Via: "control-api", Reps: reps}
	if viaCLI {
		res.Via = "cli"
	}
	var cuts, calls []time.Duration
	for range reps {
		cut, call, late, err := killOnce(ctx, v, viaCLI)
		if err != nil {
			if res.FirstError == "" {
				res.FirstError = err.Error()
			}
			continue
		}
		res.Cut++
		res.LateEvents += late
		cuts, calls = append(cuts, cut), append(calls, call)
		res.AllMS = append(res.AllMS, ms(cut))
	}
	if len(cuts) > 0 {
		res.MedianMS, res.KillCallMS = ms(medianDur(cuts)), ms(medianDur(calls))
		res.MaxMS = ms(cuts[len(cuts)-1]) // medianDur sorted it
	}
	return res
}

func killOnce(ctx context.Context, v *variant, viaCLI bool) (cut, call time.Duration, late int, err error) {
	tf := v.tf
	g, err := tf.newSession(ctx)
	if err != nil {
		return 0, 0, 0, fmt.Errorf("grant: %w", err)
	}
	sv := *v
	sv.token = g.Token
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	resp, start, err := openStream(sctx, &sv, "events=10000&every=2ms")
	if err != nil {
		return 0, 0, 0, err
	}
	defer resp.Body.Close()
	progress := make(chan int, 1)
	obsc := make(chan *streamObs, 1)
	go func() { obsc <- readEvents(resp.Body, start, progress) }()
	for n := 0; n < 10; {
		select {
		case n = <-progress:
		case <-time.After(5 * time.Second):
			return 0, 0, 0, fmt.Errorf("stream on %s delivered no events", v.name)
		}
	}
	t0 := time.Now()
	if viaCLI {
		_, err = tf.cli(ctx, "", "kill", g.Session)
	} else {
		err = tf.kill(ctx, g.Session)
	}
	call = time.Since(t0)
	if err != nil {
		return 0, 0, 0, fmt.Errorf("kill: %w", err)
	}
	var o *streamObs
	select {
	case o = <-obsc:
	case <-time.After(10 * time.Second):
		return 0, 0, 0, fmt.Errorf("stream still open 10s after kill of %s", g.Session)
	}
	if o.endErr == nil {
		return 0, 0, 0, fmt.Errorf("stream ended cleanly, not cut, after kill")
	}
	for _, a := range o.arrivals {
		if a.After(t0.Add(call)) {
			late++
		}
	}
	return o.end.Sub(t0), call, late, nil
}
