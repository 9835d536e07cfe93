package main

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestSpanFormat(t *testing.T) {
	for _, tc := range []struct {
		s      span
		dec    int
		suffix string
		want   string
	}{
		{span{3110, 3610}, 0, " req/s", "3,110–3,610 req/s"},
		{span{269.2, 269.4}, 0, "", "269"},
		{span{0.91, 1.2}, 2, "×", "0.91–1.20×"},
		{span{-12, 1234567}, 0, "", "-12–1,234,567"},
	} {
		if got := tc.s.format(tc.dec, tc.suffix); got != tc.want {
			t.Errorf("%v.format(%d, %q) = %q, want %q", tc.s, tc.dec, tc.suffix, got, tc.want)
		}
	}
}

func TestRoundFigures(t *testing.T) {
	vs := []*variant{{name: vDirect}, {name: vBare}, {name: vPortkey}}
	seq := map[string]*sample{}
	load := map[string]*loadResult{}
	for i, v := range vs {
		p50 := []time.Duration{100, 300, 2100}[i] * time.Microsecond
		seq[v.name] = &sample{vals: []time.Duration{p50, p50, p50}}
		load[v.name] = &loadResult{lat: &sample{vals: []time.Duration{p50}},
			cnt: counter{ok: []int{8000, 4000, 500}[i], elapsed: time.Second}, proxyCPU: time.Second}
	}
	got := roundFigures(vs, seq, load)
	if pk := got[vPortkey]; pk.AddedP50US != 2000 || pk.AddedVsBare != 10 || pk.RPS != 500 || pk.RPSVsBare != 0.13 || pk.CPUUS != 2000 {
		t.Errorf("roundFigures portkey = %+v, want added 2000 µs, 10× bare's, 500 req/s, 0.13× bare's, 2000 µs CPU", pk)
	}
	if d := got[vDirect]; d.AddedP50US != 0 || d.AddedVsBare != 0 || d.RPSVsBare != 2 {
		t.Errorf("roundFigures direct = %+v, want nothing added and 2× bare's rate", d)
	}
}

func TestParseFlagsPeers(t *testing.T) {
	o, _, _, err := parseFlags([]string{"-peers"})
	if err != nil {
		t.Fatal(err)
	}
	if o.seq != 2000 || o.rounds != 3 || o.slice != 8*time.Second || !slices.Equal(o.conc, []int{16}) ||
		o.out != "bench/peers.json" || o.portkeyVersion != portkeyPin {
		t.Errorf("parseFlags(-peers) = %+v, want the defaults of the README's measurement", o)
	}
	o, _, _, err = parseFlags([]string{"-peers", "-quick", "-seq", "500", "-portkey-version", "latest"})
	if err != nil {
		t.Fatal(err)
	}
	if o.seq != 500 || o.rounds != 1 || o.slice != time.Second || o.portkeyVersion != "latest" {
		t.Errorf("parseFlags(-peers -quick -seq 500) = %+v, want -seq kept, quick rounds and slice", o)
	}
	if o, _, _, _ := parseFlags([]string{"-quick"}); o.seq != 300 || len(o.conc) != 2 {
		t.Errorf("parseFlags(-quick) = %+v, want the plain run's quick defaults", o)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-peers", "-open", "10"}, "-open has no effect with -peers"},
		{[]string{"-peers", "-conc", "16,64"}, "one concurrency level"},
		{[]string{"-peers", "-portkey-version", "--registry=http://x"}, "want a version"},
		{[]string{"-peers", "-portkey-version", "^1.15"}, "want a version"},
		{[]string{"-portkey-version", "1.15.2"}, "needs -peers"},
		{[]string{"-peers", "-rounds", "0"}, "at least 1"},
		{[]string{"-peers", "-slice", "0s"}, "positive duration"},
	} {
		_, _, _, err := parseFlags(tc.args)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("parseFlags(%q) = %v, want an error containing %q", tc.args, err, tc.want)
		}
	}
}
