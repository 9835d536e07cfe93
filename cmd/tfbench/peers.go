package main

import (
	"context"
	"fmt"
	"time"
)

// -peers is a run of its own: Tokfence beside the peer a user would pick
// instead (Portkey's gateway), the bare Go proxy (the floor) and direct,
// for small chat requests, in rounds. Each round gives every variant seq
// sequential requests (interleaved in batches) and then slice at conc in
// flight (one variant after another, the order rotating), so the spread
// over the rounds shows how much of a difference is noise. Tokfence runs
// twice: with the default config and with audit_fsync = "never".

// peerEnv is what the peer comparison runs against.
type peerEnv struct {
	upstream string
	pk       *portkey
	vs       []*variant
}

// The variants' names in the table, in order.
const (
	vDirect   = "direct"
	vBare     = "bare-proxy"
	vPortkey  = "portkey"
	vTFDef    = "tokfence-default"
	vTFNoSync = "tokfence-nosync"
)

func setupPeers(ctx context.Context, r *reaper, o options, res *results) (*peerEnv, error) {
	node, npm, nodeVersion, err := nodeTools(ctx)
	if err != nil {
		return nil, err
	}
	e, err := setupCommon(ctx, r, o)
	if err != nil {
		return nil, err
	}
	step(ctx, fmt.Sprintf("installing %s@%s with npm into a throwaway directory", portkeyPackage, o.portkeyVersion))
	pk, err := installPortkey(ctx, r, npm, o.portkeyVersion, o.keep)
	if err != nil {
		return nil, err
	}
	pk.node = nodeVersion
	step(ctx, fmt.Sprintf("starting the Portkey gateway %s on node %s", pk.version, pk.node))
	if err := pk.start(ctx, r, node); err != nil {
		return nil, err
	}
	step(ctx, `starting tokfence daemons (default config; audit_fsync = "never")`)
	def, err := startTokfence(ctx, r, e.kr, e.bin, e.dir, "default", e.upstream, fsyncDefault)
	if err != nil {
		return nil, err
	}
	nosync, err := startTokfence(ctx, r, e.kr, e.bin, e.dir, "nosync", e.upstream, fsyncOff)
	if err != nil {
		return nil, err
	}
	res.Meta.AuditFsync = "tokfence-default: no audit_fsync line (the daemon's default); tokfence-nosync: audit_fsync = \"never\""
	res.Meta.Peer = fmt.Sprintf("%s %s (npm install %s@%s), node %s", portkeyPackage, pk.version, portkeyPackage, o.portkeyVersion, pk.node)
	vs := []*variant{
		{name: vDirect, base: e.upstream, token: nosync.token},
		{name: vBare, base: e.bare + "/openai", token: nosync.token, pid: e.bareChild.pid()},
		// The gateway forwards the client's key: its client holds the
		// provider key itself, which is how it is used.
		{name: vPortkey, base: pk.url, token: fakeKey, pid: pk.proc.pid(), header: portkeyHeaders(e.upstream)},
		{name: vTFDef, base: "http://" + def.tcp + "/openai", token: def.token, tf: def, pid: def.pid},
		{name: vTFNoSync, base: "http://" + nosync.tcp + "/openai", token: nosync.token, tf: nosync, pid: nosync.pid},
	}
	for _, v := range vs {
		v.client = tcpClient()
	}
	return &peerEnv{upstream: e.upstream, pk: pk, vs: vs}, nil
}

// peerRound is one variant's figures in one round.
type peerRound struct {
	P50US       float64 `json:"p50_us"`
	P99US       float64 `json:"p99_us"`
	AddedP50US  float64 `json:"added_p50_us"` // minus direct's in the same round
	AddedP99US  float64 `json:"added_p99_us"`
	AddedVsBare float64 `json:"added_p50_ratio_to_bare,omitempty"`
	RPS         float64 `json:"req_per_s"`
	RPSVsBare   float64 `json:"rps_ratio_to_bare"`
	LoadP50US   float64 `json:"load_p50_us"` // latency at conc in flight
	LoadP99US   float64 `json:"load_p99_us"`
	Requests    int     `json:"requests"` // completed at conc in flight
	Errors      int     `json:"errors"`
	FirstError  string  `json:"first_error,omitempty"`
	CPUUS       float64 `json:"proxy_cpu_us_per_req,omitempty"` // the proxy's process tree, at conc in flight
}

// peerRounds runs the rounds and returns one row per variant.
func peerRounds(ctx context.Context, o options, pe *peerEnv) ([]peerRow, error) {
	vs := pe.vs
	rounds := map[string][]peerRound{}
	c := o.conc[0]
	// Warm every variant before the first round, sequentially and under
	// load: node's JIT compiles the gateway's hot paths only after it has
	// run them a while, and every connection pool fills.
	step(ctx, "warming up every variant")
	for _, v := range vs {
		if _, err := sequential(ctx, []*variant{v}, 200, 200, 0); err != nil {
			return nil, fmt.Errorf("warm-up: %w", err)
		}
		loadSlice(ctx, v, c, min(o.slice/4, 2*time.Second))
	}
	for round := range o.rounds {
		step(ctx, fmt.Sprintf("round %d/%d: %d sequential requests per variant, batches of %d", round+1, o.rounds, o.seq, o.batch))
		seq, err := sequential(ctx, rotate(vs, round), o.seq, o.batch, 0)
		if err != nil {
			return nil, err
		}
		step(ctx, fmt.Sprintf("round %d/%d: %s at %d in flight per variant", round+1, o.rounds, o.slice, c))
		load := map[string]*loadResult{}
		for _, v := range rotate(vs, round) {
			c0 := treeCPU(v.pid)
			lat, cnt := loadSlice(ctx, v, c, o.slice)
			load[v.name] = &loadResult{lat: lat, cnt: cnt, proxyCPU: treeCPU(v.pid) - c0}
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
		}
		for name, pr := range roundFigures(vs, seq, load) {
			rounds[name] = append(rounds[name], pr)
		}
	}
	var rows []peerRow
	for _, v := range vs {
		row := newPeerRow(v.name, rounds[v.name])
		if v.pid != 0 {
			row.RSSKiB, row.HWMKiB = treeRSS(v.pid)
		}
		switch {
		case v.tf != nil:
			row.IdleRSSKiB = v.tf.idleRSS
		case v.name == vPortkey:
			row.IdleRSSKiB = pe.pk.idleRSS
		}
		rows = append(rows, row)
	}
	return rows, nil
}

// roundFigures turns one round's samples into figures relative to direct
// and to the bare proxy of the same round.
func roundFigures(vs []*variant, seq map[string]*sample, load map[string]*loadResult) map[string]peerRound {
	out := map[string]peerRound{}
	sum := map[string]summary{}
	for _, v := range vs {
		sum[v.name] = seq[v.name].summarize()
	}
	d, b := sum[vDirect], sum[vBare]
	bareRPS := load[vBare].cnt.rate()
	for _, v := range vs {
		s, l := sum[v.name], load[v.name]
		ls := l.lat.summarize()
		pr := peerRound{P50US: s.P50, P99US: s.P99, AddedP50US: round2(s.P50 - d.P50), AddedP99US: round2(s.P99 - d.P99),
			RPS: l.cnt.rate(), RPSVsBare: ratio(l.cnt.rate(), bareRPS), LoadP50US: ls.P50, LoadP99US: ls.P99,
			Requests: l.cnt.ok, Errors: l.cnt.errs, FirstError: l.cnt.firstErr, CPUUS: perReq(l.proxyCPU, l.cnt.ok)}
		if v.name != vDirect {
			pr.AddedVsBare = ratio(s.P50-d.P50, b.P50-d.P50)
		}
		out[v.name] = pr
	}
	return out
}

// benchPeers is the whole -peers run.
func benchPeers(ctx context.Context, r *reaper, o options, res *results) (*results, error) {
	pe, err := setupPeers(ctx, r, o, res)
	if err != nil {
		return nil, err
	}
	res.Meta.Method = fmt.Sprintf("%d round%s, each: %d sequential requests per variant (interleaved in batches of %d), "+
		"then %s at %d in flight per variant, the order rotating", o.rounds, plural(o.rounds), o.seq, o.batch, o.slice, o.conc[0])
	res.Meta.Note = "loopback only, on a machine shared with other processes; the load generator, the fake upstream and " +
		"every proxy compete for the same CPUs, so absolute numbers are noisy: read the ratios and the spread over the rounds"
	if err := sanity(ctx, pe.vs); err != nil {
		return nil, err
	}
	for _, v := range pe.vs {
		if err := reachesUpstream(ctx, v, pe.upstream); err != nil {
			return nil, err
		}
	}
	if res.Peers, err = peerRounds(ctx, o, pe); err != nil {
		return nil, err
	}
	res.Meta.LoadAfter = loadavg()
	res.Meta.Seconds = round2(time.Since(res.Meta.Started).Seconds())
	return res, nil
}

// reachesUpstream sends one request through v and checks that the fake
// upstream served exactly one request meanwhile: not none (a gateway
// answering from a cache or by itself) and not two (a retry), so that the
// rounds time the path they claim to.
func reachesUpstream(ctx context.Context, v *variant, upstream string) error {
	before, err := fetchStats(ctx, upstream)
	if err != nil {
		return fmt.Errorf("upstream stats: %w", err)
	}
	if _, err := v.doSmall(ctx); err != nil {
		return fmt.Errorf("check %s: %w", v.name, err)
	}
	after, err := fetchStats(ctx, upstream)
	if err != nil {
		return fmt.Errorf("upstream stats: %w", err)
	}
	if n := after.Served - before.Served; n != 1 {
		return fmt.Errorf("check %s: one request through it reached the fake upstream %d times, want once", v.name, n)
	}
	return nil
}
