package main

import (
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"text/tabwriter"
)

// peerRow is one variant over the rounds of a -peers run; each figure is
// given as its lowest and highest round, the spread being the noise.
type peerRow struct {
	Variant     string      `json:"variant"`
	AddedP50US  span        `json:"added_p50_us"`
	AddedP99US  span        `json:"added_p99_us"`
	AddedVsBare span        `json:"added_p50_ratio_to_bare"`
	RPS         span        `json:"req_per_s"`
	RPSVsBare   span        `json:"rps_ratio_to_bare"`
	CPUUS       span        `json:"proxy_cpu_us_per_req"`
	Errors      int         `json:"errors"`
	FirstError  string      `json:"first_error,omitempty"`
	IdleRSSKiB  int64       `json:"idle_rss_kib,omitempty"`  // once it answered
	RSSKiB      int64       `json:"rss_after_kib,omitempty"` // after the last round
	HWMKiB      int64       `json:"peak_rss_kib,omitempty"`  // VmHWM (summed over a process tree)
	Rounds      []peerRound `json:"rounds"`
}

// span is the lowest and the highest of a figure over the rounds.
type span struct {
	Min float64 `json:"min"`
	Max float64 `json:"max"`
}

func newPeerRow(name string, rs []peerRound) peerRow {
	row := peerRow{Variant: name, Rounds: rs,
		AddedP50US:  spanOf(rs, func(r peerRound) float64 { return r.AddedP50US }),
		AddedP99US:  spanOf(rs, func(r peerRound) float64 { return r.AddedP99US }),
		AddedVsBare: spanOf(rs, func(r peerRound) float64 { return r.AddedVsBare }),
		RPS:         spanOf(rs, func(r peerRound) float64 { return r.RPS }),
		RPSVsBare:   spanOf(rs, func(r peerRound) float64 { return r.RPSVsBare }),
		CPUUS:       spanOf(rs, func(r peerRound) float64 { return r.CPUUS }),
	}
	for _, r := range rs {
		row.Errors += r.Errors
		if row.FirstError == "" {
			row.FirstError = r.FirstError
		}
	}
	return row
}

func spanOf(rs []peerRound, f func(peerRound) float64) span {
	if len(rs) == 0 {
		return span{}
	}
	s := span{Min: math.Inf(1), Max: math.Inf(-1)}
	for _, r := range rs {
		s.Min, s.Max = min(s.Min, f(r)), max(s.Max, f(r))
	}
	return s
}

// format writes the span as "a–b" (or "a" when both ends round alike)
// with dec decimals and thousands separators, then suffix.
func (s span) format(dec int, suffix string) string {
	lo, hi := group(s.Min, dec), group(s.Max, dec)
	if lo == hi {
		return lo + suffix
	}
	return lo + "–" + hi + suffix
}

// group formats v with dec decimals and commas between thousands.
func group(v float64, dec int) string {
	s := strconv.FormatFloat(v, 'f', dec, 64)
	sign := ""
	if strings.HasPrefix(s, "-") {
		sign, s = "-", s[1:]
	}
	whole, frac, _ := strings.Cut(s, ".")
	var b strings.Builder
	for i, c := range whole {
		if i > 0 && (len(whole)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if frac != "" {
		return sign + b.String() + "." + frac
	}
	return sign + b.String()
}

// mib formats KiB as MiB with one decimal, or "-" for nothing measured.
func mib(kib int64) string {
	if kib == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f", float64(kib)/1024)
}

func (r *results) printPeers(w io.Writer) {
	fmt.Fprintf(w, "\ntfbench -peers %s  (%d CPUs, load before %s, after %s)\n", r.Meta.Started.Format("2006-01-02T15:04:05Z07:00"),
		r.Meta.NumCPU, r.Meta.LoadBefore, r.Meta.LoadAfter)
	fmt.Fprintf(w, "peer: %s\n%s\n", r.Meta.Peer, r.Meta.AuditFsync)
	fmt.Fprintf(w, "\nsmall chat request; %s; lowest–highest of the rounds\n", r.Meta.Method)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "variant\tadded p50 µs\tadded p99 µs\tadded p50/bare\treq/s\treq/s /bare\tproxy CPU µs/req\terrors\tRSS MiB idle\tafter\tpeak\t")
	for _, p := range r.Peers {
		added, added99, addedVsBare := p.AddedP50US.format(0, ""), p.AddedP99US.format(0, ""), p.AddedVsBare.format(2, "×")
		if p.Variant == vDirect {
			added, added99, addedVsBare = "-", "-", "-"
		}
		cpu := p.CPUUS.format(0, "")
		if p.CPUUS.Max == 0 {
			cpu = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t\n", p.Variant, added, added99, addedVsBare,
			p.RPS.format(0, ""), p.RPSVsBare.format(2, "×"), cpu, p.Errors, mib(p.IdleRSSKiB), mib(p.RSSKiB), mib(p.HWMKiB))
	}
	tw.Flush()
	for _, p := range r.Peers {
		if p.FirstError != "" {
			fmt.Fprintf(w, "  %s first error: %s\n", p.Variant, p.FirstError)
		}
	}
	fmt.Fprintf(w, "note: %s\n", r.Meta.Note)
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
