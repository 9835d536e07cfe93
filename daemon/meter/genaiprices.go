package meter

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// This file reads price tables in the data format of genai-prices
// (github.com/pydantic/genai-prices, MIT licence): a JSON array of
// providers, each with models in order, each with a match rule and its
// prices in USD per million tokens. It is the format of the package's
// prices/new_data/v2/data.json and of the table its npm release bundles.
//
// Only what prices tokens is read; usage extractors, descriptions and
// provider-level match rules are ignored (the route names the provider).
// A file is read whole or not at all: any malformed rule or price is an
// error naming the provider and model. The one exception is a regex that
// is valid where the table was written (JavaScript, Python) but uses
// syntax Go's RE2 lacks (lookaround, backreferences): its model is
// skipped with a warning. Skipped, it still stands in its place with the
// regex read as "matches anything", and unpriced: a model it might have
// named is neither priced at zero nor priced by a broader rule further
// down the list.

// gpProvider is one provider of a genai-prices table.
type gpProvider struct {
	ID       string    `json:"id"`
	Models   []gpModel `json:"models"`
	Fallback []string  `json:"fallback_model_providers"`
}

// gpModel is one model of a provider: its match rule and its prices, a
// price object or a list of {constraint, prices}.
type gpModel struct {
	ID     string          `json:"id"`
	Match  json.RawMessage `json:"match"`
	Prices json.RawMessage `json:"prices"`
}

// genaiProviderNames maps genai-prices provider ids to Tokfence's
// provider names where they differ. Any other id is used as it is, so a
// pricing_file can price a provider added in the config.
var genaiProviderNames = map[string]string{
	"google": "gemini",
	"x-ai":   "xai",
	"azure":  "azure-openai",
}

// genaiProviderIDs are the genai-prices ids of Tokfence's built-in
// providers: the embedded table keeps these and their fallbacks
// (tools/prices/trim.mjs has the same list; a test holds the two together).
var genaiProviderIDs = []string{"openai", "anthropic", "google", "mistral", "groq", "openrouter", "deepseek", "x-ai", "together", "azure"}

func tokfenceProviderName(id string) string {
	if n, ok := genaiProviderNames[id]; ok {
		return n
	}
	return id
}

// parseGenAIPrices reads a genai-prices table. source and date label
// every price it yields. Warnings name the models it skipped.
func parseGenAIPrices(b []byte, source, date string) (map[string]*priceProvider, []string, error) {
	if s := strings.TrimLeft(string(b), " \t\r\n"); s != "" && s[0] != '[' {
		return nil, nil, errors.New("want a JSON array of providers (genai-prices' data.json)")
	}
	var raw []gpProvider
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, nil, jsonError(b, err)
	}
	if len(raw) == 0 {
		return nil, nil, errors.New("no providers: want a JSON array of providers")
	}
	byID := map[string]*priceProvider{}
	var warnings []string
	for _, rp := range raw {
		if rp.ID == "" {
			return nil, nil, errors.New(`a provider has no "id"`)
		}
		if byID[rp.ID] != nil {
			return nil, nil, fmt.Errorf("provider %q is listed twice", rp.ID)
		}
		p := &priceProvider{id: rp.ID}
		name := tokfenceProviderName(rp.ID)
		for _, rm := range rp.Models {
			e, lacks, err := compileModel(rm, name, source, date)
			if err != nil {
				return nil, nil, fmt.Errorf("provider %q model %q: %w", rp.ID, rm.ID, err)
			}
			if lacks != nil {
				warnings = append(warnings, fmt.Sprintf("provider %q model %q skipped: %v; the models its rule might match are unpriced", rp.ID, rm.ID, lacks))
			}
			p.entries = append(p.entries, e)
		}
		byID[rp.ID] = p
	}
	out, err := link(raw, byID)
	if err != nil {
		return nil, nil, err
	}
	return out, warnings, nil
}

// link resolves each provider's fallbacks and keys the providers by
// Tokfence's names for them.
func link(raw []gpProvider, byID map[string]*priceProvider) (map[string]*priceProvider, error) {
	out := map[string]*priceProvider{}
	for _, rp := range raw {
		p := byID[rp.ID]
		for _, f := range rp.Fallback {
			if fp := byID[f]; fp != nil && fp != p { // one the file lacks is skipped: its models stay unpriced
				p.fallback = append(p.fallback, fp)
			}
		}
		name := tokfenceProviderName(rp.ID)
		if out[name] != nil {
			return nil, fmt.Errorf("providers %q and %q are both Tokfence's %q", out[name].id, rp.ID, name)
		}
		out[name] = p
	}
	return out, nil
}

// jsonError gives a JSON decoding error the line and column of the last
// byte read when it was found.
func jsonError(b []byte, err error) error {
	var off int64 = -1
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		off = se.Offset
	case errors.As(err, &te):
		off = te.Offset
	}
	if off < 1 || off > int64(len(b)) {
		return err
	}
	pre := string(b[:off-1])
	line, col := 1+strings.Count(pre, "\n"), len(pre)-strings.LastIndexByte(pre, '\n')
	return fmt.Errorf("line %d column %d: %w", line, col, err)
}

// compileModel compiles one model. lacks is non-nil when its rule has a
// regex RE2 lacks: the entry is then unpriced.
func compileModel(rm gpModel, provider, source, date string) (e priceEntry, lacks error, err error) {
	if rm.ID == "" {
		return priceEntry{}, nil, errors.New(`no "id"`)
	}
	if len(rm.Match) == 0 {
		return priceEntry{}, nil, errors.New(`no "match" rule`)
	}
	var rc ruleCompiler
	m, err := rc.compile(rm.Match)
	if err != nil {
		return priceEntry{}, nil, fmt.Errorf("match: %w", err)
	}
	periods, priced, err := decodePrices(rm.Prices)
	if err != nil {
		return priceEntry{}, nil, fmt.Errorf("prices: %w", err)
	}
	p := Price{Provider: provider, Model: rm.ID, Date: date, Source: source, periods: periods}
	p.Ref = priceRef(provider, rm.ID, source, date)
	return priceEntry{match: m, price: p, priced: priced && rc.lacks == nil}, errors.Join(rc.lacks...), nil
}

// clip shortens a JSON value quoted in an error message.
func clip(v json.RawMessage) string {
	const max = 60 // enough to recognise the value
	if len(v) > max {
		return string(v[:max]) + "…"
	}
	return string(v)
}
