package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"
)

// phases runs the five measurements in order. The open-streams phase is
// last: counting the daemon's goroutines ends it.
func phases(ctx context.Context, o options, e *env, res *results) error {
	if err := sanity(ctx, e.vs); err != nil {
		return err
	}
	step(ctx, fmt.Sprintf("(1) sequential: %d requests per variant, batches of %d", o.seq, o.batch))
	seq, err := sequential(ctx, e.vs, o.seq, o.batch, 50)
	if err != nil {
		return err
	}
	res.Sequential = seqRows(e.vs, seq)
	for _, c := range o.conc {
		step(ctx, fmt.Sprintf("(2) concurrency %d: %d rounds of %s per variant", c, o.rounds, o.slice))
		m, err := concurrent(ctx, e.vs, e.upstream, e.upChild.pid(), c, o.rounds, o.slice)
		if err != nil {
			return err
		}
		res.Concurrent = append(res.Concurrent, concRows(e.vs, c, m)...)
	}
	sv := e.vs[:4] // streaming: the fsync variants add nothing here (one audit record per stream)
	step(ctx, fmt.Sprintf("(3) SSE: %d streams per variant of %d events every %s", o.streams, o.events, o.every))
	sse, err := sseRun(ctx, sv, o.streams, o.events, o.every)
	if err != nil {
		return err
	}
	res.Streaming = sseRows(sv, sse)
	res.Meta.DaemonLoadedRSSKB, res.Meta.DaemonLoadedHWMKB, _, _ = procStatus(e.tf.pid)
	tcp := e.vs[3]
	step(ctx, fmt.Sprintf("(5) kill to cut: %d via the control API, %d via the CLI", o.kills, o.cliKills))
	res.Kill = append(res.Kill, killToCut(ctx, tcp, o.kills, false))
	if o.cliKills > 0 {
		res.Kill = append(res.Kill, killToCut(ctx, tcp, o.cliKills, true))
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if o.open == 0 {
		return nil // -open 0: no open-streams phase
	}
	res.OpenStreams, err = openPhase(ctx, o, e)
	return err
}

// openPhase holds o.open streams through a fresh bare proxy and then a
// fresh Tokfence daemon (fsync off), so that "before" is an idle process
// and not one still holding the garbage of the load phases.
func openPhase(ctx context.Context, o options, e *env) ([]openResult, error) {
	step(ctx, fmt.Sprintf("(4) %d open streams through a fresh bare proxy, then a fresh Tokfence (TCP)", o.open))
	bareURL, bareChild, err := startSelf(e.r, "bare", e.upstream)
	if err != nil {
		return nil, err
	}
	bv := &variant{name: "bare-proxy", base: bareURL + "/openai", client: e.vs[1].client, token: e.tf.token, pid: bareChild.pid()}
	bare := holdOpen(ctx, bv, bv.pid, o.open, func() (int, string) {
		st, err := fetchStats(ctx, bareURL)
		if err != nil {
			return 0, "stats: " + err.Error()
		}
		return st.Goroutines, "runtime.NumGoroutine() of the bare proxy process"
	})
	bareChild.stop(5 * time.Second)
	tf, err := startTokfence(ctx, e.r, e.kr, e.bin, e.dir, "streams", e.upstream, "false")
	if err != nil {
		return nil, err
	}
	time.Sleep(time.Second) // idle RSS after start settles
	tf.idleRSS, _, _, _ = procStatus(tf.pid)
	tv := &variant{name: "tokfence-tcp", base: "http://" + tf.tcp + "/openai", client: e.vs[3].client, token: tf.token, tf: tf, pid: tf.pid}
	var count func() (int, string)
	if o.goroutines {
		count = func() (int, string) {
			n, err := tf.countGoroutines()
			if err != nil {
				return 0, "SIGQUIT dump: " + err.Error()
			}
			return n, "counted in the Go runtime's SIGQUIT dump (GOTRACEBACK=all) with the streams open; ends the daemon"
		}
	}
	tfo := holdOpen(ctx, tv, tf.pid, o.open, count)
	tfo.IdleRSSKiB = tf.idleRSS
	return []openResult{bare, tfo}, ctx.Err()
}

// sanity sends one request per variant and checks that the reply is the
// fake completion and that the upstream received what the path implies:
// the agent's token when nothing sits between (direct, bare proxy), the
// provider key when Tokfence swapped it in. A benchmark of a path that
// silently fails or skips the key injection would measure nothing.
func sanity(ctx context.Context, vs []*variant) error {
	for _, v := range vs {
		resp, err := v.client.Do(v.request(ctx, chatBody, ""))
		if err != nil {
			return fmt.Errorf("sanity %s: %w", v.name, err)
		}
		b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		if err != nil {
			return fmt.Errorf("sanity %s: read reply: %w", v.name, err)
		}
		if resp.StatusCode != http.StatusOK || string(b) != completion {
			return fmt.Errorf("sanity %s: status %d, body %.200q", v.name, resp.StatusCode, b)
		}
		want := "capability-token"
		if v.isTokfence() {
			want = "provider-key"
		}
		if got := resp.Header.Get(sawHeader); got != want {
			return fmt.Errorf("sanity %s: upstream received %q as the credential, want %q", v.name, got, want)
		}
	}
	return nil
}
