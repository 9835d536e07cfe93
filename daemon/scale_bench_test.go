package daemon

import (
	"context"
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tokfence/tokfence/daemon/api"
)

// BenchmarkTenThousandSessions holds 10,000 live sessions and cycles
// 100,000 operations through the control API over the socket (a grant
// each, then the end of the oldest session: a kill by id, a kill of its
// agent, or its expiry), with the audit trail in the default mode. The
// daemon's clock moves a second an operation and every session lives
// 10,000 seconds, so the oldest one is due to expire just when its turn
// comes; housekeeping runs at each expiry. It reports
// grant latency (p50, p99) at that size, the RSS (and live heap) each live
// session costs, and the growth across the cycle: in all, and after the
// first full turnover of the live set (steady), when the sets that hold
// killed sessions until their tokens expire have reached their size. The
// live heap is sampled eight times a turnover from then on: the sensors'
// maps, made anew about once a turnover, make it saw through a band
// (heap-band-MiB), and growth shows as a rise of the band's floor
// (heap-floor-B/op, the slope through each turnover's lowest sample):
//
//	go test -run '^$' -bench TenThousandSessions -benchtime 1x ./daemon/
//
// TOKFENCE_SCALE_OPS and TOKFENCE_SCALE_LIVE shrink it for a quick look;
// TOKFENCE_SCALE_HEAPPROFILE=P writes heap profiles P.live, P.warm, P.mid
// and P.end: before the cycle, after its first turnover, half way and
// after it, while the daemon runs (go tool pprof -base P.mid P.end shows
// what grew in the steady state).
func BenchmarkTenThousandSessions(b *testing.B) {
	live, ops := 10_000, 100_000
	if v, err := strconv.Atoi(os.Getenv("TOKFENCE_SCALE_OPS")); err == nil && v > 0 {
		ops = v
	}
	if v, err := strconv.Atoi(os.Getenv("TOKFENCE_SCALE_LIVE")); err == nil && v > 0 {
		live = v
	}
	e := startProxyEnv(b, nil, func(c *Config) { c.AuditSync = AuditSyncInterval })
	ctx := context.Background()
	type sess struct {
		id, agent string
		expires   time.Time
	}
	// The live sessions, oldest at ring[head]: a fixed ring, so that
	// the harness's own memory holds still across the cycle.
	ring, head := make([]sess, 0, live), 0
	n := 0
	// The session of grant n is ended by operation n (counting the first
	// live grants as operations -live+1..0), so one that is to expire
	// lives a second short of its turn and the others ten seconds more.
	grant := func() time.Duration {
		n++
		// A session ended by kill --agent has an agent of its own;
		// the others share 100, as real agents share names.
		agent := "pool-" + strconv.Itoa(n%100)
		if (n-1)%3 == 1 {
			agent = "agent-" + strconv.Itoa(n)
		}
		ttl := time.Duration(live+10) * time.Second
		if (n-1)%3 == 2 {
			ttl = time.Duration(live-1) * time.Second
		}
		start := time.Now()
		g, err := e.client.Grant(ctx, api.GrantRequest{Agent: agent, Providers: []string{"openai"}, TTL: ttl.String()})
		took := time.Since(start)
		if err != nil {
			b.Fatalf("grant %d: %v", n, err)
		}
		if s := (sess{g.Session, agent, g.Expires}); len(ring) < live {
			ring = append(ring, s)
		} else {
			ring[head], head = s, (head+1)%live // the oldest has ended
		}
		return took
	}
	// The harness's own records are made at full size before the first
	// reading: a latency slice grown by append would add its doublings
	// (8 bytes an operation) to what looks like the daemon's growth.
	lat := make([]time.Duration, 0, ops)
	every := max(1, live/8)
	heapAt := make([][2]float64, 0, ops/every+2) // (operation, live heap) after the first turnover
	rss0, heap0 := rssBytes(), liveHeap()
	for range live {
		grant()
		e.clock.Advance(time.Second)
	}
	e.logs.reset()
	rssLive, heapLive := rssBytes(), liveHeap()
	heapProfile("live")
	b.ResetTimer()
	var rssWarm int64
	var heapWarm float64
	for range b.N {
		lat, heapAt = lat[:0], heapAt[:0]
		for i := range ops {
			old := ring[head] // the oldest: the grant takes its place
			lat = append(lat, grant())
			// End the oldest session, one of three ways.
			switch i % 3 { // i == n-live-1 of old's grant, mod 3
			case 0:
				if _, err := e.client.Kill(ctx, api.KillRequest{Session: old.id}); err != nil {
					b.Fatalf("kill %s: %v", old.id, err)
				}
			case 1:
				if _, err := e.client.Kill(ctx, api.KillRequest{Agent: old.agent}); err != nil {
					b.Fatalf("kill --agent %s: %v", old.agent, err)
				}
			}
			e.clock.Advance(time.Second)
			if i%3 == 2 {
				e.d.housekeep() // old's time is up
				if _, ok := e.d.sessions.Get(old.id); ok {
					b.Fatalf("session %s outlived its expiry %v", old.id, old.expires)
				}
			}
			if i%100 == 0 {
				e.logs.reset() // the harness keeps the daemon's log in memory
			}
			if i+1 == live && ops > live {
				// One full turnover: the killed-session sets, the
				// revocation list and the book's tables are at their
				// steady size from here on.
				rssWarm, heapWarm = rssBytes(), liveHeap()
				heapAt = append(heapAt, [2]float64{float64(i), heapWarm})
				heapProfile("warm")
			}
			if i+1 == ops/2 {
				heapProfile("mid")
			}
			if i+1 > live && (i+1-live)%every == 0 {
				heapAt = append(heapAt, [2]float64{float64(i), liveHeap()})
			}
		}
	}
	b.StopTimer()
	if got := len(e.d.sessions.List()); got < live/2 {
		b.Fatalf("%d sessions live after the cycle, want about %d", got, live)
	}
	e.logs.reset()
	rssEnd, heapEnd := rssBytes(), liveHeap()
	heapProfile("end")
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "grant-p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "grant-p99-ms")
	b.ReportMetric(float64(rssLive-rss0)/float64(live)/1024, "rss-KiB/session")
	b.ReportMetric(float64(rssEnd-rssLive)/(1<<20), "rss-growth-MiB")
	b.ReportMetric(float64(heapLive-heap0)/float64(live)/1024, "heap-KiB/session")
	b.ReportMetric((heapEnd-heapLive)/(1<<20), "heap-growth-MiB")
	if rssWarm != 0 {
		// Growth after the first turnover, when nothing should grow.
		b.ReportMetric(float64(rssEnd-rssWarm)/(1<<20), "rss-growth-steady-MiB")
		b.ReportMetric((heapEnd-heapWarm)/(1<<20), "heap-growth-steady-MiB")
		// The maps the book makes anew grow between remakes and shrink
		// at each, about once a turnover, so the heap saws up and down
		// through a band; what would be growth is a rise of the band's
		// floor: the slope through each turnover's lowest sample.
		floor, lo, hi := heapFloor(heapAt, live)
		b.ReportMetric(floor, "heap-floor-B/op")
		b.ReportMetric((hi-lo)/(1<<20), "heap-band-MiB")
		var mib []string
		for _, p := range heapAt {
			mib = append(mib, strconv.FormatFloat(p[1]/(1<<20), 'f', 1, 64))
		}
		b.Logf("live heap (MiB) every %d operations after the first turnover: %s", every, strings.Join(mib, " "))
	}
	b.ReportMetric(float64(ops), "ops")
	b.ReportMetric(0, "ns/op")
}

// heapFloor returns the least-squares slope through the lowest of the
// samples in each whole turnover of live operations but the first (0 for
// fewer than two), and the lowest and highest sample of all. The first
// is left out because the heap still steps once in it: by half a MiB or
// so at 1,000 and 2,000 live sessions, where the band is as wide.
func heapFloor(pts [][2]float64, live int) (slope, lo, hi float64) {
	if len(pts) == 0 {
		return 0, 0, 0
	}
	var mins [][2]float64
	lo, hi = math.Inf(1), math.Inf(-1)
	for _, p := range pts {
		lo, hi = min(lo, p[1]), max(hi, p[1])
		t := int(p[0]-pts[0][0]) / live // the turnover p falls in
		if t == len(mins) {
			mins = append(mins, p)
		} else if p[1] < mins[t][1] {
			mins[t] = p
		}
	}
	// A last turnover cut short may not reach its lowest point.
	if whole := int(pts[len(pts)-1][0]-pts[0][0]+1) / live; whole < len(mins) {
		mins = mins[:whole]
	}
	if len(mins) > 0 {
		mins = mins[1:]
	}
	return leastSquares(mins), lo, hi
}

// leastSquares is the least-squares slope of y on x through the points.
func leastSquares(pts [][2]float64) float64 {
	if len(pts) < 2 {
		return 0
	}
	var mx, my float64
	for _, p := range pts {
		mx, my = mx+p[0], my+p[1]
	}
	mx, my = mx/float64(len(pts)), my/float64(len(pts))
	var sxy, sxx float64
	for _, p := range pts {
		sxy += (p[0] - mx) * (p[1] - my)
		sxx += (p[0] - mx) * (p[0] - mx)
	}
	return sxy / sxx
}

// heapProfile writes the heap profile to $TOKFENCE_SCALE_HEAPPROFILE.when,
// if that is set.
func heapProfile(when string) {
	if path := os.Getenv("TOKFENCE_SCALE_HEAPPROFILE"); path != "" {
		if f, err := os.Create(path + "." + when); err == nil {
			pprof.WriteHeapProfile(f)
			f.Close()
		}
	}
}

// liveHeap is the live heap after a GC.
func liveHeap() float64 { return liveMemory()[0] }

// rssBytes is this process's resident set after a GC that returns what it
// can to the system.
func rssBytes() int64 {
	runtime.GC()
	debug.FreeOSMemory()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.Fields(v)[0], 10, 64)
			return kb << 10
		}
	}
	return 0
}
