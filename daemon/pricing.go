package daemon

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/tokfence/tokfence/daemon/audit"
)

//go:embed prices.json
var builtinPrices []byte

// Price is what a model costs, in USD per million tokens, with where and
// when the figure was taken.
type Price struct {
	Provider    string  `json:"provider" toml:"-"`
	Model       string  `json:"model" toml:"-"`
	Input       float64 `json:"input" toml:"input"`
	CachedInput float64 `json:"cached_input" toml:"cached_input"`
	Output      float64 `json:"output" toml:"output"`
	Date        string  `json:"date" toml:"date"`
	Source      string  `json:"source" toml:"source"`
}

// priceTable finds a model's price by provider and longest matching name.
type priceTable map[string][]Price // provider -> entries, longest model first

// loadPrices merges the embedded table with config overrides, keyed
// "PROVIDER/MODEL".
func loadPrices(overrides map[string]Price) (priceTable, error) {
	var f struct {
		Entries []Price `json:"entries"`
	}
	if err := json.Unmarshal(builtinPrices, &f); err != nil {
		return nil, fmt.Errorf("embedded price table: %w", err)
	}
	byKey := map[string]Price{}
	for _, p := range f.Entries {
		byKey[p.Provider+"/"+p.Model] = p
	}
	for k, p := range overrides {
		prov, model, ok := strings.Cut(k, "/")
		if !ok || prov == "" || model == "" {
			return nil, fmt.Errorf("config: pricing key %q: want \"PROVIDER/MODEL\"", k)
		}
		if p.Input < 0 || p.CachedInput < 0 || p.Output < 0 || math.IsNaN(p.Input+p.CachedInput+p.Output) {
			return nil, fmt.Errorf("config: pricing %q: prices must be non-negative", k)
		}
		p.Provider, p.Model = prov, model
		if p.Source == "" {
			p.Source = "config file"
		}
		byKey[k] = p
	}
	t := priceTable{}
	for _, p := range byKey {
		t[p.Provider] = append(t[p.Provider], p)
	}
	for _, list := range t {
		sort.Slice(list, func(i, j int) bool { return len(list[i].Model) > len(list[j].Model) })
	}
	return t, nil
}

// lookup returns the price of model at provider: an exact entry, or the
// longest entry followed by '-' (gpt-4o-2024-08-06 is gpt-4o).
func (t priceTable) lookup(provider, model string) (Price, bool) {
	for _, p := range t[provider] {
		if model == p.Model || strings.HasPrefix(model, p.Model+"-") {
			return p, true
		}
	}
	return Price{}, false
}

// costMicroUSD prices u. Cached input tokens are part of the input count
// in OpenAI's and Gemini's usage; Anthropic reports them separately, and
// the tap folds them the same way, so cached tokens are billed at the
// cached rate and the rest at the input rate.
func (p Price) costMicroUSD(u audit.Usage) int64 {
	cached := min(u.CachedTokens, u.InputTokens)
	usd := float64(u.InputTokens-cached)*p.Input + float64(cached)*p.CachedInput + float64(u.OutputTokens)*p.Output
	return int64(math.Ceil(usd)) // per-million price × tokens = micro-USD
}
