package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"
)

// results is the whole run, as printed and as written to JSON.
type results struct {
	Meta        meta         `json:"meta"`
	Sequential  []seqRow     `json:"sequential"`
	Concurrent  []concRow    `json:"concurrent"`
	Streaming   []sseRow     `json:"streaming"`
	OpenStreams []openResult `json:"open_streams"`
	Kill        []killResult `json:"kill_to_cut"`
	Goals       []goal       `json:"goals"`
	Peers       []peerRow    `json:"peers,omitempty"` // -peers, which runs nothing else
}

type meta struct {
	Started     time.Time `json:"started"`
	Seconds     float64   `json:"seconds"`
	Args        []string  `json:"args"`
	Quick       bool      `json:"quick"`
	GoVersion   string    `json:"go_version"`
	NumCPU      int       `json:"num_cpu"`
	LoadBefore  string    `json:"loadavg_before"`
	LoadAfter   string    `json:"loadavg_after"`
	Commit      string    `json:"commit,omitempty"`
	AuditFsync  string    `json:"audit_fsync"`
	Peer        string    `json:"peer,omitempty"`   // -peers: what was installed
	Method      string    `json:"method,omitempty"` // -peers: the rounds
	Note        string    `json:"note"`
	DaemonRSSKB int64     `json:"daemon_idle_rss_kib"`
	// The fsync-off daemon after phases 1-3: what the load left behind.
	DaemonLoadedRSSKB int64 `json:"daemon_after_load_rss_kib"`
	DaemonLoadedHWMKB int64 `json:"daemon_after_load_hwm_kib"`
}

type seqRow struct {
	Variant string `json:"variant"`
	summary
	AddedP50US  float64 `json:"added_p50_us"` // p50 minus direct's p50
	AddedP99US  float64 `json:"added_p99_us"`
	VsDirect    float64 `json:"p50_ratio_to_direct"`
	AddedVsBare float64 `json:"added_p50_ratio_to_bare_added"`
	// AddedVsBareSame compares with the bare proxy on the same transport:
	// bare-proxy-unix for the socket variants, bare-proxy for TCP.
	AddedVsBareSame float64 `json:"added_p50_ratio_to_bare_same_transport,omitempty"`
}

type concRow struct {
	Concurrency   int     `json:"concurrency"`
	Variant       string  `json:"variant"`
	RPS           float64 `json:"req_per_s"`
	VsDirect      float64 `json:"rps_ratio_to_direct"`
	VsBare        float64 `json:"rps_ratio_to_bare"`
	P50US         float64 `json:"p50_us"`
	P99US         float64 `json:"p99_us"`
	P99VsBare     float64 `json:"p99_ratio_to_bare"`
	Requests      int     `json:"requests"`
	Errors        int     `json:"errors"`
	FirstError    string  `json:"first_error,omitempty"`
	UpstreamConns int64   `json:"upstream_conns_opened"`
	ProxyCPUUS    float64 `json:"proxy_cpu_us_per_req"`    // the proxy process's CPU time / requests
	UpstreamCPUUS float64 `json:"upstream_cpu_us_per_req"` // the fake upstream's
}

type sseRow struct {
	Variant       string  `json:"variant"`
	Streams       int     `json:"streams"`
	Events        int     `json:"events"`
	TTFBP50US     float64 `json:"ttfb_p50_us"`
	TTFBAddedUS   float64 `json:"ttfb_added_p50_us"`
	DelayP50US    float64 `json:"event_delay_p50_us"`
	DelayP99US    float64 `json:"event_delay_p99_us"`
	DelayMaxUS    float64 `json:"event_delay_max_us"`
	AddedP50US    float64 `json:"event_delay_added_p50_us"`
	AddedP99US    float64 `json:"event_delay_added_p99_us"`
	EventsPerRead float64 `json:"events_per_read"`
	Incomplete    int     `json:"incomplete_streams"`
	FirstError    string  `json:"first_incomplete,omitempty"`
	StreamP50MS   float64 `json:"stream_duration_p50_ms"`
}

type goal struct {
	Name     string `json:"name"`
	Target   string `json:"target"`
	Measured string `json:"measured"`
	Met      bool   `json:"met"`
}

func (r *results) print(w io.Writer) {
	if r.Peers != nil {
		r.printPeers(w)
		return
	}
	fmt.Fprintf(w, "\ntfbench %s  (%d CPUs, load before %s, after %s; %s)\n", r.Meta.Started.Format(time.RFC3339),
		r.Meta.NumCPU, r.Meta.LoadBefore, r.Meta.LoadAfter, r.Meta.AuditFsync)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "\n(1) small non-streaming requests, sequential (µs)")
	fmt.Fprintln(tw, "variant\tn\tp50\tp90\tp99\tmax\tadded p50\tadded p99\tp50/direct\tadded/bare-added\tsame transport\t")
	for _, s := range r.Sequential {
		fmt.Fprintf(tw, "%s\t%d\t%.0f\t%.0f\t%.0f\t%.0f\t%.0f\t%.0f\t%.2f×\t%s\t%s\t\n", s.Variant, s.N, s.P50, s.P90, s.P99, s.Max,
			s.AddedP50US, s.AddedP99US, s.VsDirect, optRatio(s.AddedVsBare), optRatio(s.AddedVsBareSame))
	}
	tw.Flush()
	fmt.Fprintln(w, "\n(2) small requests under closed-loop concurrency")
	fmt.Fprintln(tw, "conc\tvariant\treq/s\t/direct\t/bare\tp50 µs\tp99 µs\tp99/bare\trequests\terrors\tupstream conns\tproxy CPU µs/req\tupstream CPU µs/req\t")
	for _, c := range r.Concurrent {
		fmt.Fprintf(tw, "%d\t%s\t%.0f\t%.2f×\t%.2f×\t%.0f\t%.0f\t%.2f×\t%d\t%d\t%d\t%s\t%.0f\t\n", c.Concurrency, c.Variant, c.RPS, c.VsDirect,
			c.VsBare, c.P50US, c.P99US, c.P99VsBare, c.Requests, c.Errors, c.UpstreamConns, optUS(c.ProxyCPUUS), c.UpstreamCPUUS)
	}
	tw.Flush()
	fmt.Fprintln(w, "\n(3) SSE streams (µs; event delay = arrival − upstream send time, same host clock)")
	fmt.Fprintln(tw, "variant\tstreams\tevents\tTTFB p50\tTTFB added\tdelay p50\tdelay p99\tdelay max\tadded p50\tadded p99\tevents/read\tincomplete\t")
	for _, s := range r.Streaming {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.0f\t%.0f\t%.0f\t%.0f\t%.0f\t%.0f\t%.0f\t%.3f\t%d\t\n", s.Variant, s.Streams, s.Events, s.TTFBP50US,
			s.TTFBAddedUS, s.DelayP50US, s.DelayP99US, s.DelayMaxUS, s.AddedP50US, s.AddedP99US, s.EventsPerRead, s.Incomplete)
	}
	tw.Flush()
	for _, s := range r.Streaming {
		if s.FirstError != "" {
			fmt.Fprintf(w, "  %s incomplete stream: %s\n", s.Variant, s.FirstError)
		}
	}
	fmt.Fprintln(w, "\n(4) open SSE streams held at once (RSS from /proc/PID/status; KiB)")
	fmt.Fprintln(tw, "variant\tstreams\topened\tidle RSS\tRSS before\tRSS open\tHWM\tper stream\tOS threads\tgoroutines\topen s\t")
	for _, o := range r.OpenStreams {
		g := "-"
		if o.Goroutines > 0 {
			g = fmt.Sprint(o.Goroutines)
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%d\t%d\t%d\t%.1f\t%d\t%s\t%.1f\t\n", o.Variant, o.Streams, o.Opened, optKiB(o.IdleRSSKiB),
			o.BeforeRSSKiB, o.OpenRSSKiB, o.OpenHWMKiB, o.PerStreamKiB, o.Threads, g, o.OpenSeconds)
	}
	tw.Flush()
	for _, o := range r.OpenStreams {
		if o.GoroutineNote != "" {
			fmt.Fprintf(w, "  %s goroutines: %s\n", o.Variant, o.GoroutineNote)
		}
		if o.FirstOpenError != "" {
			fmt.Fprintf(w, "  %s first open error: %s\n", o.Variant, o.FirstOpenError)
		}
	}
	fmt.Fprintln(w, "\n(5) kill → live stream cut (ms, from the kill call's start to the client's read failing)")
	fmt.Fprintln(tw, "via\treps\tcut\tmedian\tmax\tkill call p50\tlate events\t")
	for _, k := range r.Kill {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.2f\t%.2f\t%.2f\t%d\t\n", k.Via, k.Reps, k.Cut, k.MedianMS, k.MaxMS, k.KillCallMS, k.LateEvents)
	}
	tw.Flush()
	for _, k := range r.Kill {
		if k.FirstError != "" {
			fmt.Fprintf(w, "  %s first error: %s\n", k.Via, k.FirstError)
		}
	}
	fmt.Fprintln(w, "\ngoals")
	for _, g := range r.Goals {
		mark := "MISSED"
		if g.Met {
			mark = "met"
		}
		fmt.Fprintf(w, "  [%s] %s (target %s): %s\n", mark, g.Name, g.Target, g.Measured)
	}
	fmt.Fprintf(w, "\ndaemon (audit_fsync off) RSS: idle %d KiB after start; %d KiB after phases 1-3 (peak %d KiB)\n",
		r.Meta.DaemonRSSKB, r.Meta.DaemonLoadedRSSKB, r.Meta.DaemonLoadedHWMKB)
	fmt.Fprintf(w, "note: %s\n", r.Meta.Note)
}

func optRatio(v float64) string {
	if v == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f×", v)
}

func optUS(v float64) string {
	if v == 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f", v)
}

func optKiB(v int64) string {
	if v == 0 {
		return "-"
	}
	return fmt.Sprint(v)
}

// write saves r as indented JSON at path, creating its directory.
func (r *results) write(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
