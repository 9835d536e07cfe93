package daemon

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"

	"github.com/tokfence/tokfence/daemon/api"
)

// stackProbeEnv names the variant a re-run of this test binary measures
// (see TestHeldStreamStackStaysSmall).
const stackProbeEnv = "TOKFENCE_STACK_PROBE"

// heldStreams is how many streams a stack probe holds open.
const heldStreams = 200

// TestHeldStreamStackStaysSmall makes the invariant behind the daemon's
// per-stream memory a test: the goroutines an open stream keeps in the
// daemon stay on small stacks, because the request path is kept shallow
// (routes.go). Each variant runs in a fresh process of this test binary
// with fixed starting stacks (GODEBUG=adaptivestackstart=0), holds 200
// streams open past their first event and reports the growth of stack
// memory in use; the daemon's own cost is its figure minus direct's. One
// handler stack doubling from 8 to 16 KiB adds 8 KiB per stream, which
// the bound below does not allow: the daemon's own is about 26 KiB today
// (the handler, the upstream connection's read and write loops, and the
// agent connection's background reader).
func TestHeldStreamStackStaysSmall(t *testing.T) {
	if variant := os.Getenv(stackProbeEnv); variant != "" {
		stackProbe(t, variant) // this process is one of the probes
		return
	}
	probe := func(variant string) float64 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestHeldStreamStackStaysSmall$", "-test.count=1")
		cmd.Env = append(os.Environ(), stackProbeEnv+"="+variant, "GODEBUG=adaptivestackstart=0")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("stack probe %s: %v\n%s", variant, err, out)
		}
		for _, line := range strings.Split(string(out), "\n") {
			if v, ok := strings.CutPrefix(line, "stack-per-stream "); ok {
				var f float64
				if _, err := fmt.Sscan(v, &f); err == nil {
					return f
				}
			}
		}
		t.Fatalf("stack probe %s printed no figure:\n%s", variant, out)
		return 0
	}
	direct, tf := probe("direct"), probe("tokfence")
	own := tf - direct
	t.Logf("stack in use per held stream: direct %.1f KiB, tokfence %.1f KiB: the daemon's own %.1f KiB", direct/1024, tf/1024, own/1024)
	limit := 30.0 * 1024
	if raceEnabled {
		limit = 38.0 * 1024 // 32 KiB today under -race
	}
	if own > limit {
		t.Errorf("an open stream keeps %.1f KiB of stack in the daemon, over %.0f KiB: a goroutine of the request path has grown its stack (see routes.go)", own/1024, limit/1024)
	}
}

// stackProbe is the measuring half of TestHeldStreamStackStaysSmall, run
// in a process of its own: it holds the streams of variant open and
// prints the growth of stack in use per stream.
func stackProbe(t *testing.T, variant string) {
	release := make(chan struct{})
	defer close(release)
	e := startProxyEnv(t, heldStream(release))
	e.up.record = false
	g := e.grant(t, api.GrantRequest{Agent: "probe", TTL: "1h"})
	url := e.up.URL + "/v1/chat/completions"
	if variant == "tokfence" {
		url = e.baseURL() + "/openai/v1/chat/completions"
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: heldStreams}}
	defer client.CloseIdleConnections()
	warm := func(n int) []io.ReadCloser {
		var bodies []io.ReadCloser
		for range n {
			req, _ := http.NewRequest("POST", url, strings.NewReader(`{"model":"gpt-4o","stream":true}`))
			req.Header.Set("Authorization", "Bearer "+g.Token)
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.ReadFull(resp.Body, make([]byte, 8)); err != nil {
				t.Fatalf("first event: %v", err)
			}
			bodies = append(bodies, resp.Body)
		}
		return bodies
	}
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	before := ms.StackInuse
	bodies := warm(heldStreams)
	runtime.GC()
	runtime.ReadMemStats(&ms)
	after := ms.StackInuse
	for _, b := range bodies {
		b.Close()
	}
	fmt.Printf("stack-per-stream %f\n", float64(after-before)/heldStreams)
}
