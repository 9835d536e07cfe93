package meter

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"time"
)

// Prices of the genai-prices format: a model's price objects, when each
// applies, and how their keys fold into the four rates Tokfence bills.

// decodePrices reads a model's prices: one price object, or a list of
// {constraint, prices} of which the last whose constraint holds applies
// (the first when none does). priced is false if any of them names no
// token price.
func decodePrices(raw json.RawMessage) ([]pricePeriod, bool, error) {
	if len(raw) == 0 {
		return nil, false, errors.New(`no "prices"`)
	}
	if raw[0] != '[' {
		rs, priced, err := decodeRates(raw)
		return []pricePeriod{{rates: rs}}, priced, err
	}
	var list []struct {
		Constraint json.RawMessage `json:"constraint"`
		Prices     json.RawMessage `json:"prices"`
	}
	if err := json.Unmarshal(raw, &list); err != nil || len(list) == 0 {
		return nil, false, fmt.Errorf("want a price object or a non-empty list of {constraint, prices}, got %s", clip(raw))
	}
	periods := make([]pricePeriod, len(list))
	all := true
	for i, c := range list {
		rs, priced, err := decodeRates(c.Prices)
		if err != nil {
			return nil, false, fmt.Errorf("[%d]: %w", i, err)
		}
		periods[i].rates = rs
		if err := periods[i].decodeConstraint(c.Constraint); err != nil {
			return nil, false, fmt.Errorf("[%d].constraint: %w", i, err)
		}
		all = all && priced
	}
	return periods, all, nil
}

func (p *pricePeriod) decodeConstraint(raw json.RawMessage) error {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	var c struct {
		Type      string  `json:"type"`
		StartDate *string `json:"start_date"`
		StartTime *string `json:"start_time"`
		EndTime   *string `json:"end_time"`
	}
	if err := json.Unmarshal(raw, &c); err != nil {
		return fmt.Errorf("%s: %v", clip(raw), err)
	}
	switch {
	case (c.Type == "start_date" || c.Type == "") && c.StartDate != nil && c.StartTime == nil && c.EndTime == nil:
		t, err := time.Parse(time.DateOnly, *c.StartDate)
		if err != nil {
			return fmt.Errorf("start_date %q: want YYYY-MM-DD", *c.StartDate)
		}
		p.from = t
		return nil
	case (c.Type == "time_of_date" || c.Type == "") && c.StartTime != nil && c.EndTime != nil && c.StartDate == nil:
		var err error
		if p.fromMS, err = timeOfDay(*c.StartTime); err != nil {
			return err
		}
		if p.toMS, err = timeOfDay(*c.EndTime); err != nil {
			return err
		}
		p.daily = true
		return nil
	}
	return fmt.Errorf("%s: want {\"type\": \"start_date\", \"start_date\": ...} or {\"type\": \"time_of_date\", \"start_time\": ..., \"end_time\": ...}", clip(raw))
}

// timeOfDay parses "HH:MM:SS[.fff](Z|±HH:MM)" into milliseconds past
// midnight UTC.
func timeOfDay(s string) (int32, error) {
	t, err := time.Parse("15:04:05Z07:00", s) // a fraction after the seconds is accepted too
	if err != nil {
		return 0, fmt.Errorf("time %q: want HH:MM:SS and a zone (Z or ±HH:MM)", s)
	}
	t = t.UTC()
	return int32(((t.Hour()*60+t.Minute())*60+t.Second())*1000 + t.Nanosecond()/1e6), nil
}

// stepRate is one price key's rate: base, or the rate of the highest tier
// whose start the request's input tokens exceed.
type stepRate struct {
	base  float64
	tiers []gpTier // by start, ascending
}

type gpTier struct {
	Start int64   `json:"start"`
	Price float64 `json:"price"`
}

func (s stepRate) at(inputTokens int64) float64 {
	r := s.base
	for _, t := range s.tiers {
		if inputTokens > t.Start {
			r = t.Price
		}
	}
	return r
}

// rateKeys are the genai-prices price keys (USD per million tokens) that
// fold into each of Tokfence's four rates. The usage Tokfence reads does
// not split tokens by modality (text, audio, image, video) or by cache
// lifetime (5 minutes, 1 hour), so each rate is the highest of its keys:
// a cap is never crossed because audio was priced as text.
var rateKeys = struct{ input, cached, write, output []string }{
	input:  []string{"input_mtok", "input_audio_mtok", "input_image_mtok", "input_video_mtok"},
	cached: []string{"cache_read_mtok", "cache_audio_read_mtok", "cache_image_read_mtok"},
	write:  []string{"cache_write_mtok", "cache_write_1h_mtok"},
	output: []string{"output_mtok", "output_audio_mtok", "output_image_mtok", "output_video_mtok", "output_reasoning_mtok"},
}

// decodeRates reads one price object into rate tiers. Every value must be
// a non-negative number or tiered prices; keys Tokfence cannot count
// (per request, per search, per page, per hour) are checked and ignored.
// Without input_mtok the object names no token price: priced is false.
// Cache reads and writes without a price of their own cost what input
// does, as in genai-prices.
func decodeRates(raw json.RawMessage) ([]rates, bool, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil || obj == nil {
		return nil, false, fmt.Errorf("want a price object such as {\"input_mtok\": 2.5, \"output_mtok\": 10}, got %s", clip(raw))
	}
	steps := map[string]stepRate{}
	for k, v := range obj {
		s, err := decodeStep(v)
		if err != nil {
			return nil, false, fmt.Errorf("%s: %w", k, err)
		}
		steps[k] = s
	}
	if _, ok := steps["input_mtok"]; !ok {
		return nil, false, nil
	}
	return foldRates(steps), true, nil
}

func decodeStep(v json.RawMessage) (stepRate, error) {
	if string(v) == "null" {
		return stepRate{}, errors.New("null price") // not zero: a missing figure
	}
	var f float64
	if err := json.Unmarshal(v, &f); err == nil {
		if f < 0 || math.IsInf(f, 0) {
			return stepRate{}, fmt.Errorf("negative price %v", f)
		}
		return stepRate{base: f}, nil
	}
	var t struct {
		Base  *float64 `json:"base"`
		Tiers []struct {
			Start *float64 `json:"start"`
			Price *float64 `json:"price"`
		} `json:"tiers"`
	}
	if err := json.Unmarshal(v, &t); err != nil || t.Base == nil || t.Tiers == nil {
		return stepRate{}, fmt.Errorf("want a number or {\"base\": ..., \"tiers\": [{\"start\": ..., \"price\": ...}]}, got %s", clip(v))
	}
	if *t.Base < 0 {
		return stepRate{}, fmt.Errorf("negative price %v", *t.Base)
	}
	s := stepRate{base: *t.Base}
	for _, tr := range t.Tiers {
		if tr.Start == nil || tr.Price == nil {
			return stepRate{}, errors.New("a tier needs start and price")
		}
		if st := *tr.Start; st < 0 || st != math.Trunc(st) || st > 1<<53 {
			return stepRate{}, fmt.Errorf("tier start %v: want a whole number of tokens", st)
		}
		if *tr.Price < 0 {
			return stepRate{}, fmt.Errorf("negative price %v", *tr.Price)
		}
		s.tiers = append(s.tiers, gpTier{Start: int64(*tr.Start), Price: *tr.Price})
	}
	sort.SliceStable(s.tiers, func(i, j int) bool { return s.tiers[i].Start < s.tiers[j].Start })
	return s, nil
}

// foldRates turns per-key step rates into one list of rates, a tier at
// each start any key has, each rate the highest of its keys there.
func foldRates(steps map[string]stepRate) []rates {
	starts := []int64{}
	for _, s := range steps {
		for _, t := range s.tiers {
			starts = append(starts, t.Start)
		}
	}
	sort.Slice(starts, func(i, j int) bool { return starts[i] < starts[j] })
	out := []rates{foldAt(steps, 0, -1)}
	for i, st := range starts {
		if i > 0 && st == starts[i-1] {
			continue
		}
		out = append(out, foldAt(steps, st+1, st))
	}
	return out
}

// foldAt is the rates for a request of n input tokens, labelled as the
// tier that applies above `above` tokens (-1: the base).
func foldAt(steps map[string]stepRate, n, above int64) rates {
	// highest is the highest rate of keys; absent stands in for the
	// first key, the plain text rate, where the object lacks it.
	highest := func(keys []string, absent float64) float64 {
		r := absent
		if s, ok := steps[keys[0]]; ok {
			r = s.at(n)
		}
		for _, k := range keys[1:] {
			if s, ok := steps[k]; ok {
				r = max(r, s.at(n))
			}
		}
		return r
	}
	in := highest(rateKeys.input, 0)
	return rates{
		above:       above,
		input:       in,
		cachedInput: highest(rateKeys.cached, in),
		cacheWrite:  highest(rateKeys.write, in),
		output:      highest(rateKeys.output, 0),
	}
}
