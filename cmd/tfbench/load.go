package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
)

// chatBody is the small non-streaming request every variant sends.
const chatBody = `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`

// variant is one way of reaching the fake upstream.
type variant struct {
	name   string
	base   string // URL up to and excluding /v1/...
	client *http.Client
	token  string
	tf     *tokfence   // nil for the baselines and the peer
	pid    int         // the proxy process, 0 for direct
	header http.Header // sent besides Authorization and Content-Type (a peer's routing)
}

func (v *variant) isTokfence() bool { return v.tf != nil }

// newVariants returns the variants of the run: direct, the bare proxy,
// Tokfence on its socket and on TCP, Tokfence on TCP with the audit trail
// synced (one variant per daemon of synced, named after it: interval, the
// default, and always), and the bare proxy again on a Unix socket.
func newVariants(upstream, bare, bareSock string, barePID int, tf *tokfence, synced ...*tokfence) []*variant {
	vs := []*variant{
		{name: "direct", base: upstream, client: tcpClient(), token: tf.token},
		{name: "bare-proxy", base: bare + "/openai", client: tcpClient(), token: tf.token, pid: barePID},
		{name: "tokfence-unix", base: "http://tokfence/openai", token: tf.token, tf: tf, pid: tf.pid,
			client: &http.Client{Timeout: 60 * time.Second, Transport: unixTransport(tf.socket, 2048)}},
		{name: "tokfence-tcp", base: "http://" + tf.tcp + "/openai", client: tcpClient(), token: tf.token, tf: tf, pid: tf.pid},
	}
	for _, s := range synced {
		vs = append(vs, &variant{name: "tokfence-tcp-" + s.name, base: "http://" + s.tcp + "/openai",
			client: tcpClient(), token: s.token, tf: s, pid: s.pid})
	}
	// The same bare proxy on a Unix socket: the floor for tokfence-unix.
	vs = append(vs, &variant{name: "bare-proxy-unix", base: "http://bare/openai", token: tf.token, pid: barePID,
		client: &http.Client{Timeout: 60 * time.Second, Transport: unixTransport(bareSock, 2048)}})
	return vs
}

// request builds one call to the chat completions endpoint.
func (v *variant) request(ctx context.Context, body, query string) *http.Request {
	u := v.base + "/v1/chat/completions"
	if query != "" {
		u += "?" + query
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+v.token) // every variant carries the same headers
	req.Header.Set("Content-Type", "application/json")
	for k, vv := range v.header { // but a peer's routing
		req.Header[k] = vv
	}
	return req
}

// doSmall sends one small non-streaming request and reads the whole reply.
func (v *variant) doSmall(ctx context.Context) (time.Duration, error) {
	start := time.Now()
	resp, err := v.client.Do(v.request(ctx, chatBody, ""))
	if err != nil {
		return 0, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	d := time.Since(start)
	if err != nil {
		return 0, err
	}
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("%s: status %d", v.name, resp.StatusCode)
	}
	return d, nil
}

// tcpClient is one variant's client over loopback TCP, with as many idle
// connections as the heaviest load needs.
func tcpClient() *http.Client {
	return &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{Proxy: nil,
		MaxIdleConns: 2048, MaxIdleConnsPerHost: 2048, IdleConnTimeout: 90 * time.Second, DisableCompression: true}}
}

// rotate returns vs starting at index i mod len(vs): each round starts
// with a different variant, so none always runs first after a pause.
func rotate(vs []*variant, i int) []*variant {
	k := i % len(vs)
	return append(append([]*variant(nil), vs[k:]...), vs[:k]...)
}

// sequential measures latency one request at a time, interleaving the
// variants in batches of batch requests, after warm requests each.
func sequential(ctx context.Context, vs []*variant, total, batch, warm int) (map[string]*sample, error) {
	out := map[string]*sample{}
	for _, v := range vs {
		out[v.name] = &sample{}
		for range warm {
			if _, err := v.doSmall(ctx); err != nil {
				return nil, fmt.Errorf("warm-up %s: %w", v.name, err)
			}
		}
	}
	for round := 0; out[vs[0].name].n() < total; round++ {
		for _, v := range rotate(vs, round) {
			for range batch {
				d, err := v.doSmall(ctx)
				if err != nil {
					return nil, fmt.Errorf("sequential %s: %w", v.name, err)
				}
				out[v.name].add(d)
			}
		}
	}
	return out, ctx.Err()
}

// loadResult is one variant at one concurrency level.
type loadResult struct {
	lat           *sample
	cnt           counter
	upstreamConns int64         // connections the fake upstream accepted meanwhile
	proxyCPU      time.Duration // CPU time the proxy process (if any) used meanwhile
	upstreamCPU   time.Duration // CPU time the fake upstream used meanwhile
}

// concurrent runs closed-loop load at concurrency c: for rounds rounds,
// each variant in turn gets c workers for slice. Between slices the
// upstream's accepted-connection count is read, so the connections each
// variant opens to it are attributed to that variant.
func concurrent(ctx context.Context, vs []*variant, upstream string, upPID, c, rounds int, slice time.Duration) (map[string]*loadResult, error) {
	out := map[string]*loadResult{}
	for _, v := range vs {
		out[v.name] = &loadResult{lat: &sample{}}
		loadSlice(ctx, v, c, slice/4) // warm: fill the connection pools
	}
	for round := range rounds {
		for _, v := range rotate(vs, round) {
			before, err := fetchStats(ctx, upstream)
			if err != nil {
				return nil, fmt.Errorf("upstream stats: %w", err)
			}
			pc0, uc0 := procCPU(v.pid), procCPU(upPID)
			lat, cnt := loadSlice(ctx, v, c, slice)
			pc1, uc1 := procCPU(v.pid), procCPU(upPID)
			after, err := fetchStats(ctx, upstream)
			if err != nil {
				return nil, fmt.Errorf("upstream stats: %w", err)
			}
			r := out[v.name]
			r.lat.merge(lat)
			r.cnt.merge(cnt)
			r.upstreamConns += after.ConnsOpened - before.ConnsOpened - 1 // minus the stats call itself
			r.proxyCPU += pc1 - pc0
			r.upstreamCPU += uc1 - uc0
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
		}
	}
	return out, nil
}

// loadSlice runs c workers against v for d and returns their latencies
// and counts. Workers stop starting requests at the deadline and finish
// the one in flight (cancelling it would close its connection and charge
// the next slice a reconnect); the elapsed time includes that tail.
// Errors are counted, not fatal: under load they are a result.
func loadSlice(ctx context.Context, v *variant, c int, d time.Duration) (*sample, counter) {
	var mu sync.Mutex
	all, cnt := &sample{}, counter{}
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(d)
	for range c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine sample
			var local counter
			for ctx.Err() == nil && time.Now().Before(deadline) {
				lat, err := v.doSmall(ctx)
				switch {
				case err == nil:
					mine.add(lat)
					local.ok++
				case ctx.Err() == nil:
					local.errs++
					if local.firstErr == "" {
						local.firstErr = err.Error()
					}
				}
			}
			mu.Lock()
			all.merge(&mine)
			cnt.merge(local)
			mu.Unlock()
		}()
	}
	wg.Wait()
	cnt.elapsed = time.Since(start)
	return all, cnt
}
