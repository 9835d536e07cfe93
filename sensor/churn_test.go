package sensor

import (
	"math/rand/v2"
	"runtime"
	"runtime/metrics"
	"testing"
)

// TestBookChurnHoldsItsSize: grants and kills at a steady number of live
// sessions leave the book's memory where the first turnover left it.
func TestBookChurnHoldsItsSize(t *testing.T) {
	const live = 500
	r := rand.New(rand.NewPCG(3, 4))
	m := mustMatcher(t, benchSecrets(3), Options{FormatRules: true})
	ring := make([]map[string]Secret, 0, live)
	n := 0
	step := func() {
		g := grantSecrets(r, n)
		n++
		grant(t, m, g)
		ring = append(ring, g)
		if len(ring) > live {
			kill(m, ring[0])
			ring = ring[1:]
		}
	}
	for range 2 * live {
		step()
	}
	warm, warmSize := liveHeapBytes(), m.Size()
	for range 20 * live {
		step()
	}
	end, endSize := liveHeapBytes(), m.Size()
	runtime.KeepAlive(m)
	t.Logf("heap after one turnover %d KiB (book %d KiB), after twenty more %d KiB (book %d KiB)", warm>>10, warmSize>>10, end>>10, endSize>>10)
	if end > warm+warm/20 {
		t.Errorf("the book grew from %d to %d KiB at a steady %d live sessions", warm>>10, end>>10, live)
	}
}

// liveHeapBytes is the live heap after a full collection: what is
// reachable, not the spans fragmentation keeps.
func liveHeapBytes() uint64 {
	runtime.GC()
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}
