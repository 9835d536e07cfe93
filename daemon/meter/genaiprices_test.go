package meter

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tokfence/tokfence/daemon/audit"
)

// fixturePrices is the path of the hand-written table in genai-prices
// format: one model per match rule kind and per price field.
func fixturePrices(t testing.TB) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("testdata", "prices", "fixture.json"))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func loadFixturePrices(t testing.TB, over map[string]PriceOverride) *Table {
	t.Helper()
	tb, err := LoadPrices(fixturePrices(t), over)
	if err != nil {
		t.Fatalf("LoadPrices(fixture) = %v", err)
	}
	return tb
}

func TestGenAIPricesMatchRules(t *testing.T) {
	tb := loadFixturePrices(t, nil)
	tests := []struct {
		name, provider, model string
		want                  string // the entry that prices it; "" for unpriced
	}{
		{"equals, case-insensitive", "openai", "fx-EQUALS", "fx-equals"},
		{"equals is the whole name", "openai", "fx-equals-2", "fx-any"},
		{"starts_with", "openai", "fx-pre-2026", "fx-prefix"},
		{"ends_with", "openai", "model-fxsuf", "fx-suffix"},
		{"contains", "openai", "a-fxmid-b", "fx-contains"},
		{"regex", "openai", "fx-re-20260101", "fx-regex"},
		{"regex anchored by its own ^ and $", "openai", "fx-re-2026", "fx-any"},
		{"or, first alternative", "openai", "fx-or-a", "fx-or"},
		{"or, second alternative", "openai", "fx-or-b", "fx-or"},
		{"and, both hold", "openai", "fx-and-x", "fx-and"},
		{"and, one fails", "openai", "fx-and-y", "fx-any"},
		{"negative lookahead read in RE2", "openai", "fx-neg-pro", "fx-neg"},
		{"negative lookahead excludes", "openai", "fx-neg-pro-tts", "fx-speech"},
		{"a regex RE2 lacks leaves what its rule might match unpriced", "openai", "fx-lb1", ""},
		{"and not priced by a broader rule below it", "openai", "fx-lb-other", ""},
		{"the first matching model wins", "openai", "fx-pre-x-fxsuf", "fx-prefix"},
		{"a compact date is spelled out on a second try", "openai", "claude-fx-20250514", "fx-claude"},
		{"a compact non-date is left alone", "openai", "claude-fx-20250231", ""},
		{"surrounding space trimmed", "openai", " fx-or-a ", "fx-or"},
		{"empty prices are no price", "openai", "fx-free", ""},
		{"per-hour prices only are no price", "openai", "fx-whisper", ""},
		{"fallback provider", "azure-openai", "fx-pre-1", "fx-prefix"},
		{"own models before the fallback's", "azure-openai", "fx-equals", "az-equals"},
		{"azure is azure-openai", "azure-openai", "az-own", "az-own"},
		{"x-ai is xai", "xai", "grok-fx-1", "grok-fx"},
		{"genai-prices ids are not provider names", "x-ai", "grok-fx-1", ""},
		{"provider not in the table", "gemini", "fx-equals", ""},
		{"unknown model", "openai", "gpt-4o", ""},
		{"no model", "openai", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, ok := tb.Lookup(tt.provider, tt.model)
			got := ""
			if ok {
				got = p.Model
			}
			if got != tt.want {
				t.Errorf("lookup(%q, %q) = %q, want %q", tt.provider, tt.model, got, tt.want)
			}
		})
	}
	if len(tb.warnings) != 1 || !strings.Contains(tb.warnings[0], `model "fx-lookbehind" skipped`) || !strings.Contains(tb.warnings[0], "RE2") {
		t.Errorf("warnings = %q, want one naming fx-lookbehind and RE2", tb.warnings)
	}
}

func TestGenAIPricesFields(t *testing.T) {
	tb := loadFixturePrices(t, nil)
	noon := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	at := func(h, m, s int) time.Time { return time.Date(2026, 12, 1, h, m, s, 0, time.UTC) }
	type u = audit.Usage
	tests := []struct {
		name, model string
		at          time.Time
		usage       u
		want        int64 // micro-USD
	}{
		{"input_mtok and output_mtok", "fx-equals", noon, u{InputTokens: 1000, OutputTokens: 100}, 1000*1 + 100*2},
		{"cache_read_mtok", "fx-pre", noon, u{InputTokens: 1000, CachedTokens: 400, OutputTokens: 10}, 600*3 + 400*0.5 + 10*4},
		{"cache reads without cache_read_mtok cost input", "fx-equals", noon, u{InputTokens: 1000, CachedTokens: 400}, 1000},
		{"cache_write_mtok", "a-fxsuf", noon, u{InputTokens: 1000, CacheWriteTokens: 800, OutputTokens: 10}, 200*5 + 800*6.25 + 10*6},
		{"cache writes without cache_write_mtok cost input", "fx-pre", noon, u{InputTokens: 1000, CacheWriteTokens: 800}, 1000 * 3},
		{"tiers: base up to the start", "fx-tiered", noon,
			u{InputTokens: 200000, CachedTokens: 100000, CacheWriteTokens: 50000, OutputTokens: 1000}, 50000*3 + 100000*0.3 + 50000*3.75 + 1000*20},
		{"tiers: each key steps at its own start", "fx-tiered", noon, u{InputTokens: 150000, OutputTokens: 1000}, 150000*3 + 1000*20},
		{"tiers: every token at the tier past its start", "fx-tiered", noon,
			u{InputTokens: 200001, CachedTokens: 100000, CacheWriteTokens: 50000, OutputTokens: 1000}, 50001*6 + 100000*0.6 + 50000*7.5 + 1000*22.5},
		{"before a start_date", "fx-dated", time.Date(2026, 5, 31, 23, 59, 59, 0, time.UTC), u{InputTokens: 1e6}, 1e6},
		{"from a start_date on", "fx-dated", time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC), u{InputTokens: 1e6}, 2e6},
		{"inside a time_of_date window", "fx-peak", noon, u{InputTokens: 1e6}, 2e6},
		{"outside it", "fx-peak", at(17, 0, 0), u{InputTokens: 1e6}, 1e6},
		{"its end is exclusive", "fx-peak", at(16, 30, 0), u{InputTokens: 1e6}, 1e6},
		{"a window across midnight, in another zone", "fx-night", at(21, 0, 0), u{InputTokens: 1e6}, 3e6},
		{"before that window", "fx-night", at(19, 59, 59), u{InputTokens: 1e6}, 1e6},
		{"after it", "fx-night", at(0, 0, 0), u{InputTokens: 1e6}, 1e6},
		{"modalities and cache lifetimes: the highest rate", "fx-audio", noon,
			u{InputTokens: 1000, CachedTokens: 100, CacheWriteTokens: 100, OutputTokens: 10}, 800*8 + 100*0.4 + 100*2 + 10*16},
		{"a fraction of a micro-dollar rounds up", "fx-neg-tts", noon, u{InputTokens: 1}, 1},
		{"cache counts past the input are capped", "fx-pre", noon, u{InputTokens: 10, CachedTokens: 50, CacheWriteTokens: 50}, 10 * 0.5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, ok := tb.Lookup("openai", tt.model)
			if !ok {
				t.Fatalf("lookup(openai, %q) found no price", tt.model)
			}
			if got := p.CostMicroUSD(tt.usage, tt.at); got != tt.want {
				t.Errorf("costMicroUSD(%+v) of %s at %s = %d, want %d", tt.usage, p.Model, tt.at.Format(time.RFC3339), got, tt.want)
			}
		})
	}
}

func TestPricingFileErrors(t *testing.T) {
	model := func(match, prices string) string {
		return `[{"id": "openai", "models": [{"id": "m", "match": ` + match + `, "prices": ` + prices + `}]}]`
	}
	ok := `{"input_mtok": 1, "output_mtok": 2}`
	tests := []struct{ name, doc, want string }{
		{"bad JSON", "[\n  {\"id\": \"openai\",\n   \"models\": [}\n]", "line 3 column 15"},
		{"not a list of providers", `{"id": "openai", "models": []}`, "want a JSON array of providers"},
		{"no providers", `[]`, "no providers"},
		{"provider without id", `[{"models": []}]`, `a provider has no "id"`},
		{"provider twice", `[{"id": "openai", "models": []}, {"id": "openai", "models": []}]`, `provider "openai" is listed twice`},
		{"two providers for one name", `[{"id": "google", "models": []}, {"id": "gemini", "models": []}]`, `both Tokfence's "gemini"`},
		{"model without match", `[{"id": "openai", "models": [{"id": "m", "prices": {}}]}]`, `model "m": no "match" rule`},
		{"model without prices", `[{"id": "openai", "models": [{"id": "m", "match": {"equals": "m"}}]}]`, `no "prices"`},
		{"negative price", model(`{"equals": "m"}`, `{"input_mtok": -1, "output_mtok": 2}`), `model "m": prices: input_mtok: negative price -1`},
		{"negative tier price", model(`{"equals": "m"}`, `{"input_mtok": {"base": 1, "tiers": [{"start": 10, "price": -2}]}}`), "input_mtok: negative price -2"},
		{"null price", model(`{"equals": "m"}`, `{"input_mtok": null}`), "input_mtok: null price"},
		{"price as a string", model(`{"equals": "m"}`, `{"input_mtok": "1"}`), "input_mtok: want a number"},
		{"fractional tier start", model(`{"equals": "m"}`, `{"input_mtok": {"base": 1, "tiers": [{"start": 0.5, "price": 2}]}}`), "whole number"},
		{"unknown match kind", model(`{"startswith": "gpt"}`, ok), `unknown match kind "startswith"`},
		{"two kinds in one rule", model(`{"equals": "a", "contains": "b"}`, ok), "exactly one rule kind"},
		{"empty pattern", model(`{"starts_with": ""}`, ok), "starts_with: empty pattern"},
		{"empty or", model(`{"or": []}`, ok), "or: want a non-empty list"},
		{"bad regex", model(`{"regex": "gpt-(4o"}`, ok), `bad regex "gpt-(4o"`},
		{"bad regex deep in a rule", model(`{"and": [{"starts_with": "g"}, {"or": [{"regex": "[a-"}]}]}`, ok), `bad regex "[a-"`},
		{"unknown constraint", model(`{"equals": "m"}`, `[{"prices": `+ok+`}, {"constraint": {"type": "weekday", "day": 1}, "prices": `+ok+`}]`), "[1].constraint"},
		{"bad start_date", model(`{"equals": "m"}`, `[{"prices": `+ok+`}, {"constraint": {"start_date": "2026-13-01"}, "prices": `+ok+`}]`), "want YYYY-MM-DD"},
		{"bad time of day", model(`{"equals": "m"}`, `[{"prices": `+ok+`}, {"constraint": {"start_time": "25:00:00Z", "end_time": "01:00:00Z"}, "prices": `+ok+`}]`), `time "25:00:00Z"`},
		{"empty price list", model(`{"equals": "m"}`, `[]`), "non-empty list"},
	}
	dir := t.TempDir()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "_")+".json")
			if err := os.WriteFile(path, []byte(tt.doc), 0o600); err != nil {
				t.Fatal(err)
			}
			tb, err := LoadPrices(path, nil)
			if err == nil || tb != nil || !strings.Contains(err.Error(), "config: pricing_file "+path+": ") || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("LoadPrices(%s) = %v, %v; want an error naming the file and %q", tt.doc, tb, err, tt.want)
			}
		})
	}
}

func TestDashDates(t *testing.T) {
	tests := []struct{ in, want string }{
		{"claude-x-20250514", "claude-x-2025-05-14"},
		{"a-20250514-b-20240101", "a-2025-05-14-b-2024-01-01"},
		{"a-20250514:tag", "a-2025-05-14:tag"},
		{"a-20250230", ""},  // no such day
		{"a-19990101", ""},  // genai-prices spells out 20YY only
		{"a-202505140", ""}, // nine digits
		{"a-2025051", ""},
		{"-20250101", "-2025-01-01"},
	}
	for _, tt := range tests {
		got, ok := dashDates(tt.in)
		if !ok {
			got = ""
		}
		if got != tt.want {
			t.Errorf("dashDates(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
