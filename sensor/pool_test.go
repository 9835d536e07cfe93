package sensor

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
)

// TestReusedStreamIsFresh scans bodies on streams reused after scanning
// other bodies, cut differently, and on new streams of an identical
// matcher that has never released one: forwarded bytes and hits must be
// the same.
func TestReusedStreamIsFresh(t *testing.T) {
	secrets := benchSecrets(20)
	opts := Options{FormatRules: true, FingerprintKey: []byte("pool"), Redact: func(h Hit) bool { return h.Class != ClassFormat }}
	reused := mustMatcher(t, secrets, opts)
	r := rand.New(rand.NewPCG(1, 2))
	var bodies []string
	for i, s := range secrets {
		v := string(s.Value)
		bodies = append(bodies,
			fmt.Sprintf(`{"messages":[{"content":"key %s here"}]}`, v),
			fmt.Sprintf("data: {\"choices\":[{\"delta\":{\"content\":\"%s\"}}]}\n\ndata: {\"choices\":[{\"delta\":{\"content\":\"%s\"}}]}\n\n", v[:len(v)/2], v[len(v)/2:]),
			fmt.Sprintf(`{"a":"%s","b":%d}`, encoders["base64at1"](v), i),
			fmt.Sprintf(`{"p":"%s"}`, encoders["pctmix"](v)+encoders["hex"](v)),
			string(chatBody(200+r.IntN(3000))))
	}
	ctypes := []string{"application/json", "text/event-stream"}
	for i, body := range bodies {
		ctype := ctypes[i%2]
		fresh := mustMatcher(t, secrets, opts)
		n := 1 + r.IntN(97)
		wantOut, wantHits := scan(fresh, ctype, body, n)
		// Dirty a stream of the shared matcher with another body, another
		// content type and other cuts, then release it for this scan.
		scan(reused, ctypes[(i+1)%2], bodies[r.IntN(len(bodies))], 1+r.IntN(13))
		gotOut, gotHits := scan(reused, ctype, body, n)
		if string(gotOut) != string(wantOut) || !reflect.DeepEqual(gotHits, wantHits) {
			t.Fatalf("body %d (%s, chunks of %d): reused stream differs from a new one\nnew:    %q %v\nreused: %q %v",
				i, ctype, n, wantOut, wantHits, gotOut, gotHits)
		}
	}
}

// TestReleasedMemoryIsReused checks that Release actually saves the
// allocations of the next NewStream and its windows.
func TestReleasedMemoryIsReused(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items at random under the race detector")
	}
	m := mustMatcher(t, benchSecrets(10), Options{FormatRules: true})
	openSSE(m).Release() // warm the pool and the package's lazy tables
	allocs := testing.AllocsPerRun(100, func() {
		st := openSSE(m)
		st.Close()
		st.Release()
	})
	if allocs > 1 {
		t.Errorf("a released and reopened SSE stream allocated %.1f times per use, want at most 1", allocs)
	}
}
