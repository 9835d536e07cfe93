package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// BenchmarkExec measures what the fence costs an agent, fenced against
// --no-fence on the same daemon: the start-up of `tokfence exec -- true`
// (CLI, grant, fence, agent, kill; medians), and the p50 of a small chat
// request from inside (through the forwarder and the agent socket)
// against the same request from an unfenced agent (loopback TCP to the
// daemon), and how long a kill takes to end every process of a fence.
// Each runs b.N times.
//
//	go test -run '^$' -bench Exec -benchtime 20x ./cmd/tokfence/
func BenchmarkExec(b *testing.B) {
	// TestMain's binary is built with -race, whose exit alone waits a
	// second; measure a plain build.
	plain := b.TempDir() + "/tokfence"
	if out, err := exec.Command("go", "build", "-o", plain, ".").CombinedOutput(); err != nil {
		b.Fatalf("build tokfence: %v\n%s", err, out)
	}
	defer func(p string) { binPath = p }(binPath)
	binPath = plain
	e, _, _ := fenceEnv(b)
	e.startDaemon("--tcp", "127.0.0.1:0")
	probe := probeBinary(b, e.home)
	modes := [][]string{
		{"exec", "--agent", "bench", "--provider", "openai"},
		{"exec", "--agent", "bench", "--provider", "openai", "--no-fence"},
	}
	// Fenced and unfenced alternate, so that the daemon's growing state and
	// the machine's noise weigh on both alike.
	b.Run("startup", func(b *testing.B) {
		var lat [2][]time.Duration
		for range b.N {
			for m, args := range modes {
				start := time.Now()
				if r := e.run("", append(args, "--", "true")...); r.code != 0 {
					b.Fatalf("exec true = %+v", r)
				}
				lat[m] = append(lat[m], time.Since(start))
			}
		}
		f, u := median(lat[0]), median(lat[1])
		b.ReportMetric(f, "fenced-ms")
		b.ReportMetric(u, "unfenced-ms")
		b.ReportMetric(f-u, "added-ms")
	})
	// kill: from `tokfence kill` of a fence full of background and
	// orphaned processes until the last of them is gone (DESIGN: within
	// 100 ms).
	b.Run("kill", func(b *testing.B) {
		var lat []time.Duration
		for i := range b.N {
			_, gone, _ := killFullFence(b, e, fmt.Sprintf("doomed-%d", i))
			lat = append(lat, gone)
		}
		b.ReportMetric(median(lat), "gone-ms")
		b.ReportMetric(float64(slices.Max(lat).Microseconds())/1e3, "max-ms")
	})
	b.Run("request", func(b *testing.B) {
		var p50 [2]float64
		for m, args := range modes {
			cmd := exec.Command(binPath, append(args, "--", probe)...)
			cmd.Env = append(append([]string(nil), e.env...), probeEnv+"=bench", "PROBE_N="+strconv.Itoa(b.N))
			var out bytes.Buffer
			cmd.Stdout = &out
			if err := cmd.Run(); err != nil {
				b.Fatalf("request bench: %v\n%s", err, out.String())
			}
			var res struct{ P50, Mean float64 }
			if err := json.Unmarshal(out.Bytes(), &res); err != nil {
				b.Fatalf("request bench output %q: %v", out.String(), err)
			}
			p50[m] = res.P50
		}
		b.ReportMetric(p50[0], "fenced-p50-µs")
		b.ReportMetric(p50[1], "tcp-p50-µs")
		b.ReportMetric(p50[0]-p50[1], "added-p50-µs")
	})
}

// median returns the median of d in milliseconds.
func median(d []time.Duration) float64 {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return float64(s[len(s)/2].Microseconds()) / 1e3
}

// runRequestBench is the agent of BenchmarkExec: PROBE_N sequential chat
// requests on one keep-alive connection; it prints the p50 and mean in µs.
func runRequestBench() int {
	n, _ := strconv.Atoi(os.Getenv("PROBE_N"))
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: nil}}
	url := os.Getenv("OPENAI_BASE_URL") + "/chat/completions"
	body := `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`
	lat := make([]time.Duration, 0, n)
	var total time.Duration
	for range max(n, 1) {
		req, _ := http.NewRequest("POST", url, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+os.Getenv("OPENAI_API_KEY"))
		req.Header.Set("Content-Type", "application/json")
		start := time.Now()
		resp, err := hc.Do(req)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			fmt.Fprintln(os.Stderr, "status", resp.StatusCode)
			return 1
		}
		d := time.Since(start)
		lat, total = append(lat, d), total+d
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	json.NewEncoder(os.Stdout).Encode(map[string]float64{
		"P50": float64(lat[len(lat)/2].Nanoseconds()) / 1e3, "Mean": float64(total.Nanoseconds()) / 1e3 / float64(len(lat))})
	return 0
}
