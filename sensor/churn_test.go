package sensor

import (
	"math/rand/v2"
	"reflect"
	"runtime"
	"runtime/metrics"
	"slices"
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

// TestBookMapsAreMadeAnew churns sessions whose canaries share prefixes
// (so the maps below the shared nodes churn too) and checks that no map
// in the trie has had more deletes since it was made than it holds keys
// (Go maps keep deletes' tombstones, and a map churned at a steady size
// grows without bound), that the root and a shared node's children were
// in fact made anew, and that remaking lost nothing: every live secret is
// still found, in every encoding, and no killed one is.
func TestBookMapsAreMadeAnew(t *testing.T) {
	const live = 40
	r := rand.New(rand.NewPCG(7, 8))
	m := mustMatcher(t, nil, Options{FormatRules: true})
	b := &m.book
	ptr := func(m map[uint64]*tnode) uintptr { return uintptr(reflect.ValueOf(m).UnsafePointer()) }
	var ring []map[string]Secret
	var killed []map[string]Secret
	roots, kids := map[uintptr]bool{}, map[uintptr]bool{}
	for i := range 10 * live {
		g := grantSecrets(r, i)
		grant(t, m, g)
		if ring = append(ring, g); len(ring) > live {
			kill(m, ring[0])
			killed = append(killed, ring[0])
			ring = ring[1:]
		}
		b.mu.RLock()
		roots[ptr(b.root)] = true
		// The node under the prefix all the Anthropic canaries share.
		if n := b.root[chunkAt([]byte("sk-ant-admin01-"), 0)]; n != nil && n.kids != nil {
			kids[ptr(n.kids)] = true
		}
		if b.dels > max(len(b.root), minChurn) {
			t.Fatalf("grant %d: the root map has had %d deletes since it was made and holds %d keys", i, b.dels, len(b.root))
		}
		for _, n := range b.root {
			if bad := overChurned(n); bad != nil {
				t.Fatalf("grant %d: a map at depth %d has had %d deletes since it was made and holds %d keys", i, bad.depth, bad.dels, len(bad.kids))
			}
		}
		b.mu.RUnlock()
	}
	if len(roots) < 3 || len(kids) < 3 {
		t.Errorf("over %d turnovers the root map was made %d times and the shared node's children %d times, want several of each", 10, len(roots), len(kids))
	}
	for _, g := range ring {
		for _, s := range g {
			for enc, f := range encoders {
				if got := foundIDs(m, "x "+f(string(s.Value))+" y", 1+r.IntN(20)); !slices.Contains(got, s.ID) {
					t.Errorf("live secret %s in %s not found after the maps were made anew: %v", s.ID, enc, got)
				}
			}
		}
	}
	for _, g := range killed[len(killed)-2*live:] {
		for _, s := range g {
			if got := foundIDs(m, string(s.Value), 7); slices.Contains(got, s.ID) {
				t.Errorf("killed secret %s still found", s.ID)
			}
		}
	}
}

// overChurned returns a node in n's subtree whose children map has had
// more deletes since it was made than it holds keys (and minChurn), or nil.
func overChurned(n *tnode) *tnode {
	if int(n.dels) > max(len(n.kids), minChurn) {
		return n
	}
	for _, k := range n.kids {
		if bad := overChurned(k); bad != nil {
			return bad
		}
	}
	return nil
}
