package meter

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tokfence/tokfence/daemon/audit"
)

// TestEmbeddedPricesCoverAgentDefaults names the models agents use by
// default and the table entries that price them. Claude Code 2.1.332's
// aliases are claude-opus-5-5 and claude-sonnet-5-5 (its haiku-5-5 and
// fable-5-2 are not in genai-prices 0.1.8); Codex 0.171's listed models
// include gpt-6-sol, gpt-6-luna, gpt-6-astra, gpt-5.6-* and gpt-5.5 (its
// newest, gpt-6.1-* and gpt-6.2-*, are not in 0.1.8 either).
func TestEmbeddedPricesCoverAgentDefaults(t *testing.T) {
	tb, err := LoadPrices("", nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ provider, model, entry string }{
		{"anthropic", "claude-opus-5-5", "claude-opus-5-5"},
		{"anthropic", "claude-sonnet-5-5", "claude-sonnet-5"}, // the table's claude-sonnet-5 rule is a prefix
		{"anthropic", "claude-sonnet-5", "claude-sonnet-5"},
		{"anthropic", "claude-opus-4-8", "claude-opus-4-8"},
		{"anthropic", "claude-sonnet-4-6", "claude-sonnet-4-6"},
		{"anthropic", "claude-sonnet-4-5-20250929", "claude-sonnet-4-5"},
		{"anthropic", "claude-opus-4-1-20250805", "claude-opus-4-1"},
		{"anthropic", "claude-haiku-4-5-20251001", "claude-haiku-4-5"},
		{"anthropic", "claude-3-5-sonnet-20241022", "claude-3-5-sonnet"},
		{"anthropic", "claude-3-5-sonnet-latest", "claude-3-5-sonnet"},
		{"anthropic", "claude-3-5-haiku-20241022", "claude-3-5-haiku-latest"},
		{"openai", "gpt-6-sol", "gpt-6-sol"},
		{"openai", "gpt-6-luna", "gpt-6-luna"},
		{"openai", "gpt-6-astra", "gpt-6-astra"},
		{"openai", "gpt-5.6-sol", "gpt-5.6-sol"},
		{"openai", "gpt-5.5", "gpt-5.5"},
		{"openai", "gpt-5", "gpt-5"},
		{"openai", "gpt-5-codex", "gpt-5"},
		{"openai", "codex-mini-latest", "codex-mini"},
		{"openai", "gpt-4o", "gpt-4o"},
		{"openai", "gpt-4o-2024-08-06", "gpt-4o"},
		{"openai", "gpt-4o-mini", "gpt-4o-mini"},
		{"openai", "gpt-4o-mini-2024-07-18", "gpt-4o-mini"},
		{"azure-openai", "gpt-4o", "gpt-4o"},
		{"gemini", "gemini-2.5-pro", "gemini-2.5-pro"},
	}
	now := time.Now()
	for _, tt := range tests {
		p, ok := tb.Lookup(tt.provider, tt.model)
		if !ok || p.Model != tt.entry {
			t.Errorf("lookup(%q, %q) = %q, %v; want entry %q", tt.provider, tt.model, p.Model, ok, tt.entry)
			continue
		}
		if r := p.ratesAt(now, 1000); r.input <= 0 || r.output <= 0 || r.cachedInput <= 0 {
			t.Errorf("%s/%s rates = %+v, want every rate above zero", tt.provider, tt.model, r)
		}
	}
}

func TestEmbeddedPricesSourceAndDate(t *testing.T) {
	tb, err := LoadPrices("", nil)
	if err != nil {
		t.Fatal(err)
	}
	var src struct {
		Package, Version, Published, URL, License string
		Providers                                 []string
	}
	if err := json.Unmarshal(builtinPricesSource, &src); err != nil {
		t.Fatal(err)
	}
	if _, err := time.Parse(time.DateOnly, src.Published); err != nil || src.Package != "@pydantic/genai-prices" ||
		src.License != "MIT" || !strings.Contains(src.URL, src.Version) {
		t.Fatalf("prices/source.json = %+v, want the package, version, date, URL and licence", src)
	}
	p, _ := tb.Lookup("openai", "gpt-4o")
	if want := src.Package + " " + src.Version; p.Source != want || p.Date != src.Published || tb.Describe() != want+" ("+src.Published+")" {
		t.Errorf("gpt-4o Source, Date = %q, %q; table %q; want %q, %q", p.Source, p.Date, tb.Describe(), want, src.Published)
	}
	if len(tb.warnings) != 0 {
		t.Errorf("embedded table warnings = %q, want none", tb.warnings)
	}
	for _, id := range genaiProviderIDs {
		if tb.providers[tokfenceProviderName(id)] == nil {
			t.Errorf("embedded table lacks genai-prices provider %q", id)
		}
	}
	if b, err := os.ReadFile(filepath.Join("prices", "LICENSE")); err != nil || !strings.Contains(string(b), "MIT License") {
		t.Errorf("prices/LICENSE = %.40q, %v; the MIT notice must ship with the data", b, err)
	}
}

func TestPricingFileReplacesTable(t *testing.T) {
	path := fixturePrices(t)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	tb := loadFixturePrices(t, nil)
	if _, ok := tb.Lookup("openai", "gpt-4o"); ok {
		t.Error("gpt-4o is priced under a pricing_file that lacks it; the embedded table must not show through")
	}
	p, ok := tb.Lookup("openai", "fx-or-a")
	if wantSrc, wantDate := "pricing_file "+path, fi.ModTime().UTC().Format(time.DateOnly); !ok || p.Source != wantSrc || p.Date != wantDate {
		t.Errorf("fx-or-a = %+v, %v; want Source %q, Date %q", p, ok, wantSrc, wantDate)
	}

}

func TestPriceOverridesWin(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	over := map[string]PriceOverride{
		"openai/gpt-4o":               {Input: 1, Output: 2},
		"openai/gpt-4o-2024-11-20":    {Input: 5, Output: 6},
		"anthropic/claude-opus-5-5":   {Input: 3, CachedInput: f(0.3), CacheWrite: f(3.75), Output: 15, Date: "2026-12-01", Source: "our contract"},
		"openai/fx-or-a":              {Input: 30, Output: 40},
		"ollama/llama3":               {}, // a local model, free because the config says so
		"openai/claude-fx-2025-05-14": {Input: 7, Output: 7},
	}
	embedded, err := LoadPrices("", over)
	if err != nil {
		t.Fatal(err)
	}
	fixture := loadFixturePrices(t, over)
	noon := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	use := audit.Usage{InputTokens: 1000, CachedTokens: 200, CacheWriteTokens: 300, OutputTokens: 100}
	tests := []struct {
		name            string
		tb              *Table
		provider, model string
		source          string
		want            int64
	}{
		{"override of a table model", embedded, "openai", "gpt-4o", "config file", 1000*1 + 100*2},
		{"and of its dated snapshots", embedded, "openai", "gpt-4o-2024-08-06", "config file", 1000*1 + 100*2},
		{"a snapshot's own override first", embedded, "openai", "gpt-4o-2024-11-20", "config file", 1000*5 + 100*6},
		{"not of another model sharing its start", embedded, "openai", "gpt-4o-mini", "@pydantic/genai-prices", 0},
		{"cache rates as given", embedded, "anthropic", "CLAUDE-OPUS-5-5", "our contract", 500*3 + 200*0.3 + 300*3.75 + 100*15},
		{"a model the table lacks", embedded, "ollama", "llama3", "config file", 0},
		{"override over a pricing_file", fixture, "openai", "fx-or-a", "config file", 1000*30 + 100*40},
		{"pricing_file below the overrides", fixture, "openai", "fx-or-b", "pricing_file", 1000*11 + 100*12},
		{"an override sees the name as sent, not the date spelled out", fixture, "openai", "claude-fx-20250514", "pricing_file", 1000*19 + 100*20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, ok := tt.tb.Lookup(tt.provider, tt.model)
			if !ok || !strings.HasPrefix(p.Source, tt.source) {
				t.Fatalf("lookup(%q, %q) = %+v, %v; want source %q", tt.provider, tt.model, p, ok, tt.source)
			}
			if got := p.CostMicroUSD(use, noon); tt.want != 0 && got != tt.want || tt.model == "llama3" && got != 0 {
				t.Errorf("costMicroUSD = %d, want %d", got, tt.want)
			}
		})
	}
	if _, err := LoadPrices("", map[string]PriceOverride{"openai/x": {Input: 1, CachedInput: f(-1)}}); err == nil ||
		!strings.Contains(err.Error(), `config: pricing "openai/x": prices must be non-negative`) {
		t.Errorf("negative override = %v, want a config error naming it", err)
	}
	if _, err := LoadPrices("", map[string]PriceOverride{"gpt-4o": {Input: 1}}); err == nil || !strings.Contains(err.Error(), "PROVIDER/MODEL") {
		t.Errorf("override without a provider = %v, want an error", err)
	}
}

func TestUnknownModelsStayUnpriced(t *testing.T) {
	tb, err := LoadPrices("", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range [][2]string{
		{"openai", "gpt-99-ultra"},
		{"openai", ""},
		{"anthropic", "claude-haiku-5-5"},    // newer than the table
		{"openai", "omni-moderation-latest"}, // listed, free, and so no price
		{"openrouter", "deepseek/deepseek-r1:free"},
		{"ollama", "llama3"},       // a provider the table does not have
		{"xai", "claude-opus-5-5"}, // another provider's model
	} {
		if p, ok := tb.Lookup(c[0], c[1]); ok {
			t.Errorf("lookup(%q, %q) = %s, want no price", c[0], c[1], p.Ref)
		}
	}
}

// BenchmarkPriceLookup is a lookup on the request path: twice per metered
// request (admission, then pricing). The openrouter miss walks the
// longest list there is.
func BenchmarkPriceLookup(b *testing.B) {
	tb, err := LoadPrices("", map[string]PriceOverride{"openai/my-model": {Input: 1}})
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct{ name, provider, model string }{
		{"override", "openai", "my-model"},
		{"openai gpt-4o", "openai", "gpt-4o"},
		{"openai gpt-6-sol", "openai", "gpt-6-sol"},
		{"anthropic dated", "anthropic", "claude-sonnet-4-5-20250929"},
		{"anthropic claude-opus-5-5", "anthropic", "claude-opus-5-5"},
		{"gemini regex", "gemini", "gemini-2.5-pro"},
		{"openai miss", "openai", "gpt-99-ultra"},
		{"openrouter miss", "openrouter", "vendor/unknown-model-20250514"},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				tb.Lookup(c.provider, c.model)
			}
		})
	}
}

// FuzzPriceLookup feeds lookup the model names an agent may send: it must
// not panic, and a price it finds is never negative.
func FuzzPriceLookup(f *testing.F) {
	tb, err := LoadPrices("", map[string]PriceOverride{"openai/gpt-4o": {Input: 1, Output: 2}})
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{"gpt-4o", "gpt-4o-2024-08-06", "claude-sonnet-4-20250514", "gemini-2.5-pro-preview-tts",
		"-20250514", "a-20251301-", "GPT-4O ", "openai/gpt-4o:free", "\x00", "é-20250101"} {
		f.Add("openai", s)
		f.Add("openrouter", s)
	}
	f.Fuzz(func(t *testing.T, provider, model string) {
		if d, ok := dashDates(model); ok && len(d) <= len(model) {
			t.Fatalf("dashDates(%q) = %q, which spells out nothing", model, d)
		}
		p, ok := tb.Lookup(provider, model)
		if !ok {
			return
		}
		u := audit.Usage{InputTokens: 300000, CachedTokens: 1000, CacheWriteTokens: 1000, OutputTokens: 1000}
		if c := p.CostMicroUSD(u, time.Now()); c < 0 {
			t.Fatalf("lookup(%q, %q) = %s costs %d", provider, model, p.Ref, c)
		}
	})
}
