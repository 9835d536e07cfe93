package daemon

import (
	"context"
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
// killed sessions until their tokens expire have reached their size:
//
//	go test -run '^$' -bench TenThousandSessions -benchtime 1x ./daemon/
//
// TOKFENCE_SCALE_OPS and TOKFENCE_SCALE_LIVE shrink it for a quick look;
// TOKFENCE_SCALE_HEAPPROFILE=P writes heap profiles P.live and P.end
// before and after the cycle, while the daemon runs.
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
	var ring []sess
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
		ring = append(ring, sess{g.Session, agent, g.Expires})
		return took
	}
	rss0, heap0 := rssBytes(), liveHeap()
	for range live {
		grant()
		e.clock.Advance(time.Second)
	}
	e.logs.reset()
	rssLive, heapLive := rssBytes(), liveHeap()
	heapProfile("live")
	b.ResetTimer()
	var lat []time.Duration
	var rssWarm int64
	var heapWarm float64
	for range b.N {
		lat = lat[:0]
		for i := range ops {
			lat = append(lat, grant())
			// End the oldest session, one of three ways.
			old := ring[0]
			ring = ring[1:]
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
				heapProfile("warm")
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
	}
	b.ReportMetric(float64(ops), "ops")
	b.ReportMetric(0, "ns/op")
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
