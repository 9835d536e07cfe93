package main

import (
	"math"
	"slices"
	"time"
)

// sample is a set of durations measured for one variant in one experiment.
// It keeps every value: the runs are bounded in count, and exact
// percentiles are worth a few megabytes.
type sample struct {
	vals []time.Duration
}

func (s *sample) add(d time.Duration) { s.vals = append(s.vals, d) }

func (s *sample) merge(o *sample) { s.vals = append(s.vals, o.vals...) }

func (s *sample) n() int { return len(s.vals) }

// summary is what a table row shows of a sample, in microseconds.
type summary struct {
	N    int     `json:"n"`
	Min  float64 `json:"min_us"`
	P50  float64 `json:"p50_us"`
	P90  float64 `json:"p90_us"`
	P99  float64 `json:"p99_us"`
	Max  float64 `json:"max_us"`
	Mean float64 `json:"mean_us"`
}

// summarize sorts the sample in place and returns its percentiles.
func (s *sample) summarize() summary {
	if len(s.vals) == 0 {
		return summary{}
	}
	slices.Sort(s.vals)
	var sum time.Duration
	for _, v := range s.vals {
		sum += v
	}
	return summary{
		N:    len(s.vals),
		Min:  us(s.vals[0]),
		P50:  us(s.pct(50)),
		P90:  us(s.pct(90)),
		P99:  us(s.pct(99)),
		Max:  us(s.vals[len(s.vals)-1]),
		Mean: us(sum / time.Duration(len(s.vals))),
	}
}

// pct returns the p-th percentile (nearest rank) of a sorted sample.
func (s *sample) pct(p float64) time.Duration {
	if len(s.vals) == 0 {
		return 0
	}
	i := int(math.Ceil(p/100*float64(len(s.vals)))) - 1
	i = max(0, min(i, len(s.vals)-1))
	return s.vals[i]
}

func us(d time.Duration) float64 { return round2(float64(d) / float64(time.Microsecond)) }

func ms(d time.Duration) float64 { return round2(float64(d) / float64(time.Millisecond)) }

func round2(v float64) float64 { return math.Round(v*100) / 100 }

// ratio returns a/b rounded, or 0 when b is not positive (no baseline).
func ratio(a, b float64) float64 {
	if b <= 0 {
		return 0
	}
	return round2(a / b)
}

// medianDur returns the median of ds (which it sorts).
func medianDur(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	return ds[len(ds)/2]
}

// counter tallies requests and errors of one variant under load.
type counter struct {
	ok, errs int
	elapsed  time.Duration
	firstErr string
}

func (c *counter) merge(o counter) {
	c.ok += o.ok
	c.errs += o.errs
	c.elapsed += o.elapsed
	if c.firstErr == "" {
		c.firstErr = o.firstErr
	}
}

// rate returns completed requests per second over the measured time.
func (c *counter) rate() float64 {
	if c.elapsed <= 0 {
		return 0
	}
	return math.Round(float64(c.ok) / c.elapsed.Seconds())
}
