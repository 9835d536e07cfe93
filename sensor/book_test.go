package sensor

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
)

// foundIDs scans body and returns the sorted distinct secret ids it hits.
func foundIDs(m *Matcher, body string, chunk int) []string {
	_, hits := scan(m, "text/plain", body, chunk)
	var ids []string
	for _, h := range hits {
		if h.SecretID != "" {
			ids = append(ids, h.SecretID)
		}
	}
	slices.Sort(ids)
	return slices.Compact(ids)
}

// sharedPrefixSecrets returns secrets whose values share prefixes of every
// length around the trie's 8-byte chunks, one a prefix of another, so
// their forms fill ends, tails, kids and leaves.
func sharedPrefixSecrets(r *rand.Rand) []Secret {
	base := "sk-ant-admin01-" + randStr(r, alnum, 40)
	var ss []Secret
	for i, n := range []int{8, 9, 15, 16, 17, 23, 24, 25, 31, 32, 33, 40, 55} {
		v := base[:n]
		if n < len(base) {
			v += randStr(r, alnum, 1+i%3) // diverge right after the shared part
		}
		ss = append(ss, Secret{ID: fmt.Sprint("p", n), Class: ClassCanary, Value: []byte(v)})
	}
	ss = append(ss, Secret{ID: "whole", Class: ClassCanary, Value: []byte(base)},
		Secret{ID: "short", Class: ClassCanary, Value: []byte(base[:8])})
	return ss
}

// TestBookSharedPrefixes checks that every secret is found in every
// encoding when many share prefixes, and that after deleting half, exactly
// the other half is.
func TestBookSharedPrefixes(t *testing.T) {
	r := rand.New(rand.NewPCG(51, 52))
	ss := sharedPrefixSecrets(r)
	m := mustMatcher(t, nil, Options{})
	for _, s := range ss {
		if err := m.Put(s.ID, s); err != nil {
			t.Fatal(err)
		}
	}
	check := func(live []Secret) {
		t.Helper()
		for _, s := range ss {
			isLive := slices.ContainsFunc(live, func(l Secret) bool { return l.ID == s.ID })
			for enc, f := range encoders {
				got := foundIDs(m, "x "+f(string(s.Value))+" y", 1+r.IntN(20))
				if isLive != slices.Contains(got, s.ID) {
					t.Errorf("Scan(%s(%s)) = %v, want %s found: %v", enc, s.ID, got, s.ID, isLive)
				}
			}
		}
	}
	check(ss)
	var live []Secret
	for i, s := range ss {
		if i%2 == 0 {
			if !m.Delete(s.ID) {
				t.Fatalf("Delete(%s) = false", s.ID)
			}
			continue
		}
		live = append(live, s)
	}
	check(live)
	if m.Delete("p8") || m.Len() != len(live) {
		t.Errorf("Delete(p8) again = true or Len = %d, want false and %d", m.Len(), len(live))
	}
}

func TestPutDelete(t *testing.T) {
	old, next := fixtureSecrets["openai"], fixtureSecrets["anthropic"]
	m := mustMatcher(t, nil, Options{FormatRules: true})
	if got := foundIDs(m, string(old.Value), 7); len(got) != 0 {
		t.Fatalf("empty matcher finds %v", got)
	}
	if err := m.Put("key:openai", old); err != nil {
		t.Fatal(err)
	}
	if got := foundIDs(m, b64(string(old.Value)), 7); !slices.Equal(got, []string{"openai"}) {
		t.Errorf("after Put: Scan = %v, want [openai]", got)
	}
	next.ID = "openai"
	if err := m.Put("key:openai", next); err != nil { // the key rotated
		t.Fatal(err)
	}
	if got := foundIDs(m, string(old.Value), 7); len(got) != 0 {
		t.Errorf("after Put of a new value: old value found: %v", got)
	}
	if got := foundIDs(m, string(next.Value), 7); !slices.Equal(got, []string{"openai"}) {
		t.Errorf("after Put of a new value: Scan = %v, want [openai]", got)
	}
	if !m.Delete("key:openai") || m.Len() != 0 {
		t.Errorf("Delete = false or Len = %d", m.Len())
	}
	if got := foundIDs(m, string(next.Value), 7); len(got) != 0 {
		t.Errorf("after Delete: Scan = %v, want nothing", got)
	}
	if err := m.Put("x", Secret{ID: "x", Value: []byte("short")}); err == nil {
		t.Errorf("Put(5-byte secret) = nil error, want ErrShortSecret")
	}
}

// TestStreamInFlightKeepsItsSecrets checks that a stream halfway through a
// held secret still finds it when other secrets change under it: a
// sibling sharing its prefix deleted (its trie node turns back into a
// leaf) or added (a leaf turns into a node).
func TestStreamInFlightKeepsItsSecrets(t *testing.T) {
	r := rand.New(rand.NewPCG(53, 54))
	prefix := "sk-ant-admin01-" + randStr(r, alnum, 20)
	x := Secret{ID: "x", Class: ClassCanary, Value: []byte(prefix + randStr(r, alnum, 40))}
	y := Secret{ID: "y", Class: ClassCanary, Value: []byte(prefix + randStr(r, alnum, 40))}
	for _, tt := range []struct {
		name   string
		before []Secret
		change func(m *Matcher)
	}{
		{"a sibling deleted", []Secret{x, y}, func(m *Matcher) { m.Delete("1") }},
		{"a sibling added", []Secret{x}, func(m *Matcher) { m.Put("y", y) }},
		{"every other secret deleted and put back", []Secret{x, y}, func(m *Matcher) { m.Delete("1"); m.Put("1", y) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for _, cut := range []int{9, 17, 30, 40, 50} {
				m := mustMatcher(t, tt.before, Options{})
				st := m.NewStream(Request, "text/plain")
				_, h1 := st.Write([]byte("key " + string(x.Value[:cut])))
				tt.change(m)
				_, h2 := st.Write([]byte(string(x.Value[cut:]) + " end"))
				_, h3 := st.Close()
				if hits := slices.Concat(h1, h2, h3); len(hits) != 1 || hits[0].SecretID != "x" {
					t.Errorf("cut at %d: Scan = %v, want one hit on x", cut, hits)
				}
			}
		})
	}
}

// grantSecrets returns what the daemon puts in the book for one session:
// its token's signature and four canaries.
func grantSecrets(r *rand.Rand, sid int) map[string]Secret {
	sig := []byte(fakeJWT(r))
	sig = sig[strings.LastIndexByte(string(sig), '.')+1:]
	out := map[string]Secret{fmt.Sprintf("tok:%d", sid): {ID: fmt.Sprint("jti", sid), Class: ClassToken, Value: sig}}
	for i, v := range []string{
		"sk-ant-admin01-" + randStr(r, keyChar, 93), "ghp_" + randStr(r, alnum, 36),
		randStr(r, b64std, 40), "sk-admin-" + randStr(r, alnum, 64),
	} {
		out[fmt.Sprintf("canary:%d:%d", sid, i)] = Secret{ID: fmt.Sprint(sid, ":", i), Class: ClassCanary, Value: []byte(v)}
	}
	return out
}

func grant(tb testing.TB, m *Matcher, secrets map[string]Secret) {
	for k, s := range secrets {
		if err := m.Put(k, s); err != nil {
			tb.Fatal(err)
		}
	}
}

func kill(m *Matcher, secrets map[string]Secret) {
	for k := range secrets {
		m.Delete(k)
	}
}

// heapInUse returns the heap in use after a full collection.
func heapInUse() uint64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// TestBookMemoryReturnsToBase grants and kills sessions as the daemon does
// (a token and four canaries each, 30 live at a time, as in the attack
// run) and checks that the matcher's size, by its own accounting, is back
// to what the provider keys alone take once they are all gone, and that
// the heap is back near where it started.
func TestBookMemoryReturnsToBase(t *testing.T) {
	r := rand.New(rand.NewPCG(55, 56))
	m := mustMatcher(t, benchSecrets(3), Options{FormatRules: true}) // the provider keys
	scan(m, "text/plain", "warm up", 7)
	base, flt0 := m.book.sizes()
	heap0 := heapInUse()
	const grants, live = 2000, 30
	var sessions []map[string]Secret
	peak := int64(0)
	for i := range grants {
		g := grantSecrets(r, i)
		grant(t, m, g)
		sessions = append(sessions, g)
		if len(sessions) > live {
			kill(m, sessions[0])
			sessions = sessions[1:]
		}
		peak = max(peak, m.Size())
	}
	withLive := m.Size()
	for _, g := range sessions {
		kill(m, g)
	}
	end, flt1 := m.book.sizes()
	heap1 := heapInUse()
	t.Logf("book: %d+%d bytes (forms and trie + filter) with the keys, %d with %d sessions (peak %d), %d+%d after the last kill; heap %d -> %d",
		base, flt0, withLive, live, peak, end, flt1, heap0, heap1)
	if perSession := (withLive - base - flt0) / live; perSession > 64<<10 {
		t.Errorf("a live session costs %d bytes of book, want at most 64 KiB", perSession)
	}
	if peak > base+flt0+int64(live+1)*64<<10 {
		t.Errorf("book peaked at %d bytes with %d live sessions: it grows with the grants, not the live sessions", peak, live)
	}
	if end != base || flt1 > 4*flt0 {
		t.Errorf("book holds %d bytes and a %d-byte filter after every session was killed, want %d and at most %d", end, flt1, base, 4*flt0)
	}
	if heap1 > heap0+4<<20 {
		t.Errorf("heap in use %d after every session was killed, %d before the first grant", heap1, heap0)
	}
}

// TestPutWhileScanning runs grants and kills against streams scanning the
// same matcher, for the race detector, and checks that a secret put
// before a stream starts is found by it.
func TestPutWhileScanning(t *testing.T) {
	m := mustMatcher(t, benchSecrets(5), Options{FormatRules: true})
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		r := rand.New(rand.NewPCG(57, 58))
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			g := grantSecrets(r, i)
			grant(t, m, g)
			kill(m, g)
		}
	}()
	r := rand.New(rand.NewPCG(59, 60))
	for i := range 200 {
		g := grantSecrets(r, 100000+i)
		grant(t, m, g)
		s := g[fmt.Sprintf("tok:%d", 100000+i)]
		body := `{"content":"` + b64(string(s.Value)) + `"}`
		if got := foundIDs(m, body, 1+r.IntN(64)); !slices.Contains(got, s.ID) {
			t.Errorf("grant %d: Scan = %v, want %s", i, got, s.ID)
		}
		kill(m, g)
	}
	close(stop)
	wg.Wait()
}

// BenchmarkGrant is the matcher's side of a grant and a kill (a token and
// four canaries put, then deleted) with 10, 100 and 1000 sessions live.
// The cost does not depend on how many there are.
func BenchmarkGrant(b *testing.B) {
	for _, n := range []int{10, 100, 1000} {
		b.Run(fmt.Sprint("live=", n), func(b *testing.B) {
			r := rand.New(rand.NewPCG(61, 62))
			m := mustMatcher(b, benchSecrets(3), Options{FormatRules: true})
			for i := range n {
				grant(b, m, grantSecrets(r, i))
			}
			gs := make([]map[string]Secret, 64)
			for i := range gs {
				gs[i] = grantSecrets(r, n+i)
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				g := gs[i%len(gs)]
				grant(b, m, g)
				kill(m, g)
				i++
			}
		})
	}
}

// BenchmarkScanSessions is BenchmarkScanAll's chat JSON scanned with the
// provider keys and 10, 100 and 1000 live sessions in the book: the cost
// per byte hardly depends on how many secrets it holds.
func BenchmarkScanSessions(b *testing.B) {
	body := chatBody(1 << 20)
	for _, n := range []int{10, 100, 1000} {
		b.Run(fmt.Sprint("live=", n), func(b *testing.B) {
			r := rand.New(rand.NewPCG(61, 62))
			m := mustMatcher(b, benchSecrets(3), Options{FormatRules: true})
			for i := range n {
				grant(b, m, grantSecrets(r, i))
			}
			benchScan(b, m, "application/json", body)
		})
	}
}
