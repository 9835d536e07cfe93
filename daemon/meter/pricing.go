package meter

import (
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/tokfence/tokfence/daemon/audit"
)

// The embedded price table is a release of genai-prices, trimmed to the
// providers Tokfence knows (tools/prices/update.sh writes both files).
var (
	//go:embed prices/genai-prices.json
	builtinPrices []byte
	//go:embed prices/source.json
	builtinPricesSource []byte
)

// Price is what a model costs, with where and when the figures were
// taken. Its rates are USD per million tokens; they may change with the
// date or time of day and step up with a request's input tokens, as the
// table says (ratesAt).
type Price struct {
	Provider string // the provider whose table entry priced the model
	Model    string // that entry: a table model id, or an override's model
	Date     string // when the figures were taken, YYYY-MM-DD
	Source   string // the table: package and version, pricing_file, or "config file"

	periods []pricePeriod
	Ref     string // "PROVIDER/MODEL (SOURCE, DATE)", noted in audit records
}

// pricePeriod is a set of rates and when it applies: from a date on,
// daily between two times, or (neither) always.
type pricePeriod struct {
	from         time.Time
	daily        bool
	fromMS, toMS int32   // milliseconds past midnight UTC; toMS < fromMS wraps midnight
	rates        []rates // by above, ascending; rates[0] is the base
}

// rates are USD per million tokens.
type rates struct {
	above       int64 // these apply to a request of more input tokens than this; -1 for the base
	input       float64
	cachedInput float64 // cache reads
	cacheWrite  float64
	output      float64
}

// holds reports whether p applies at t.
func (p *pricePeriod) holds(t time.Time) bool {
	switch {
	case !p.from.IsZero():
		return !t.Before(p.from)
	case p.daily:
		h, m, s := t.UTC().Clock()
		ms := int32(((h*60+m)*60+s)*1000 + t.Nanosecond()/1e6)
		if p.toMS < p.fromMS {
			return ms >= p.fromMS || ms < p.toMS
		}
		return ms >= p.fromMS && ms < p.toMS
	}
	return true
}

// ratesAt returns the rates of a request made at t with inputTokens of
// input: the last period that holds (the first if none does), and in it
// the highest tier whose threshold the input exceeds. genai-prices tiers
// price every token of the request at the tier's rate, not marginally.
func (p Price) ratesAt(t time.Time, inputTokens int64) rates {
	per := &p.periods[0]
	for i := len(p.periods) - 1; i >= 0; i-- {
		if p.periods[i].holds(t) {
			per = &p.periods[i]
			break
		}
	}
	r := per.rates[0]
	for _, x := range per.rates[1:] {
		if inputTokens > x.above {
			r = x
		}
	}
	return r
}

// costMicroUSD prices u for a request made at t. InputTokens counts every
// input token, cache reads and writes included (the tap folds Anthropic's
// separate counts in, as OpenAI and Gemini report them), so cache reads
// are billed at the cached rate, cache writes at the write rate and the
// rest at the input rate.
func (p Price) CostMicroUSD(u audit.Usage, t time.Time) int64 {
	r := p.ratesAt(t, u.InputTokens)
	cached := min(u.CachedTokens, u.InputTokens)
	written := min(u.CacheWriteTokens, u.InputTokens-cached)
	USD := float64(u.InputTokens-cached-written)*r.input + float64(cached)*r.cachedInput +
		float64(written)*r.cacheWrite + float64(u.OutputTokens)*r.output
	// Per-million price × tokens = micro-USD, rounded up; the nano-dollar
	// off keeps float error (0.3 × 100000 = 30000.000000000004) from
	// rounding an exact figure up.
	return int64(math.Ceil(USD - 1e-3))
}

// PriceOverride is a [pricing."PROVIDER/MODEL"] entry of the config file,
// in USD per million tokens. It applies to MODEL and to its dated
// snapshots (MODEL-2024-08-06, MODEL-20250514), not to other models that
// share its name's start (gpt-4o is not gpt-4o-mini). Cache reads and
// writes cost what input does unless cached_input or cache_write says
// otherwise.
type PriceOverride struct {
	Input       float64  `toml:"input"`
	CachedInput *float64 `toml:"cached_input"`
	CacheWrite  *float64 `toml:"cache_write"`
	Output      float64  `toml:"output"`
	Date        string   `toml:"date"`
	Source      string   `toml:"source"`
}

// Table finds a model's price: the config's overrides first, then
// the table (the embedded one or pricing_file). A table is immutable once
// loaded, so one daemon's lookups share it without locks.
type Table struct {
	source    string // "@pydantic/genai-prices 0.1.8", or "pricing_file PATH"
	date      string
	providers map[string]*priceProvider // by Tokfence provider name
	overrides map[string][]Price        // by provider, longest model first
	warnings  []string                  // models skipped at load
}

// priceProvider is one provider's models, in table order: the first that
// matches prices a model, then those of its fallback providers (Azure
// serves OpenAI's models, Vertex Anthropic's).
type priceProvider struct {
	id       string
	entries  []priceEntry
	fallback []*priceProvider
}

type priceEntry struct {
	match  matcher
	price  Price
	priced bool // false: the table lists the model but names no token price
}

func (p *priceProvider) find(model string) *priceEntry {
	if e := p.own(model); e != nil {
		return e
	}
	for _, f := range p.fallback {
		if e := f.own(model); e != nil {
			return e
		}
	}
	return nil
}

func (p *priceProvider) own(model string) *priceEntry {
	for i := range p.entries {
		if p.entries[i].match.match(model) {
			return &p.entries[i]
		}
	}
	return nil
}

// pricesSource describes the embedded table (prices/source.json).
type pricesSource struct {
	Package   string `json:"package"`
	Version   string `json:"version"`
	Published string `json:"published"`
}

// builtinTable is the embedded table, parsed once: every daemon (and every
// Config.Validate) shares it.
var builtinTable = sync.OnceValues(func() (*Table, error) {
	var src pricesSource
	if err := json.Unmarshal(builtinPricesSource, &src); err != nil {
		return nil, fmt.Errorf("embedded price table source: %w", err)
	}
	name := src.Package + " " + src.Version
	provs, warns, err := parseGenAIPrices(builtinPrices, name, src.Published)
	if err != nil {
		return nil, fmt.Errorf("embedded price table: %w", err)
	}
	return &Table{source: name, date: src.Published, providers: provs, warnings: warns}, nil
})

// readPricesFile reads a table in genai-prices format. Its prices are
// dated by the file's modification time.
func readPricesFile(file string) (*Table, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	b, err := io.ReadAll(f)
	if err != nil {
		return nil, err
	}
	name, date := "pricing_file "+file, fi.ModTime().UTC().Format(time.DateOnly)
	provs, warns, err := parseGenAIPrices(b, name, date)
	if err != nil {
		return nil, err
	}
	return &Table{source: name, date: date, providers: provs, warnings: warns}, nil
}

// LoadPrices returns the price table: file (in genai-prices format) or,
// when file is "", the embedded one, under the config's overrides keyed
// "PROVIDER/MODEL".
func LoadPrices(file string, overrides map[string]PriceOverride) (*Table, error) {
	base, err := builtinTable()
	if file != "" {
		base, err = readPricesFile(file)
		if err != nil {
			return nil, fmt.Errorf("config: pricing_file %s: %w", file, err)
		}
	}
	if err != nil {
		return nil, err
	}
	t := *base // shares the immutable providers
	t.overrides = map[string][]Price{}
	for k, o := range overrides {
		p, err := o.price(k)
		if err != nil {
			return nil, fmt.Errorf("config: pricing %q: %w", k, err)
		}
		t.overrides[p.Provider] = append(t.overrides[p.Provider], p)
	}
	for _, list := range t.overrides { // gpt-4o-2024-08-06's own entry before gpt-4o's
		sort.Slice(list, func(i, j int) bool { return len(list[i].Model) > len(list[j].Model) })
	}
	return &t, nil
}

func (o PriceOverride) price(key string) (Price, error) {
	prov, model, ok := strings.Cut(key, "/")
	if !ok || prov == "" || model == "" {
		return Price{}, errors.New(`want "PROVIDER/MODEL"`)
	}
	r := rates{above: -1, input: o.Input, cachedInput: o.Input, cacheWrite: o.Input, output: o.Output}
	if o.CachedInput != nil {
		r.cachedInput = *o.CachedInput
	}
	if o.CacheWrite != nil {
		r.cacheWrite = *o.CacheWrite
	}
	for _, v := range []float64{r.input, r.cachedInput, r.cacheWrite, r.output} {
		if v < 0 || math.IsNaN(v) || math.IsInf(v, 0) {
			return Price{}, errors.New("prices must be non-negative")
		}
	}
	p := Price{Provider: prov, Model: strings.ToLower(model), Date: o.Date, Source: o.Source,
		periods: []pricePeriod{{rates: []rates{r}}}}
	if p.Source == "" {
		p.Source = "config file"
	}
	p.Ref = priceRef(prov, p.Model, p.Source, p.Date)
	return p, nil
}

// priceRef is how an audit record names the price it used.
func priceRef(provider, model, source, date string) string {
	s := provider + "/" + model + " (" + source
	if date != "" {
		s += ", " + date
	}
	return s + ")"
}

// lookup returns the price of model at provider. Names compare
// case-insensitively. An override applies to its model and the model's
// dated snapshots (gpt-4o-2024-08-06 is gpt-4o); then
// the table's first matching model, at the provider or its fallbacks,
// and failing that, with a compact date spelled out (claude-x-20250514
// as claude-x-2025-05-14). A model the table lists without a token
// price is not priced: ok is false, so it is never counted as free.
func (t *Table) Lookup(provider, model string) (p Price, ok bool) {
	m := strings.ToLower(strings.TrimSpace(model))
	if m == "" {
		return Price{}, false
	}
	for _, o := range t.overrides[provider] {
		if rest, ok := strings.CutPrefix(m, o.Model); ok && (rest == "" || isSnapshot(rest)) {
			return o, true
		}
	}
	pp := t.providers[provider]
	if pp == nil {
		return Price{}, false
	}
	e := pp.find(m)
	if e == nil {
		if d, ok := dashDates(m); ok {
			e = pp.find(d)
		}
	}
	if e == nil || !e.priced {
		return Price{}, false
	}
	return e.price, true
}

// dashDates spells out each compact date "-YYYYMMDD" (a real date in
// 20YY, followed by '-', ':' or the end) as "-YYYY-MM-DD", as genai-prices
// does before its second attempt. ok is false when there is none.
func dashDates(m string) (string, bool) {
	var b []byte
	last := 0
	for i := 0; i+9 <= len(m); i++ {
		if m[i] != '-' || m[i+1] != '2' || m[i+2] != '0' || !allDigits(m[i+3:i+9]) {
			continue
		}
		if end := i + 9; end < len(m) && m[end] != '-' && m[end] != ':' {
			continue
		}
		if _, err := time.Parse("20060102", m[i+1:i+9]); err != nil {
			continue
		}
		b = append(b, m[last:i+5]...)
		b = append(b, '-')
		b = append(b, m[i+5:i+7]...)
		b = append(b, '-')
		b = append(b, m[i+7:i+9]...)
		last = i + 9
		i += 8
	}
	if b == nil {
		return "", false
	}
	return string(append(b, m[last:]...)), true
}

// isSnapshot reports whether a model name's rest names a dated snapshot:
// "-" then digits and dashes ("-2024-08-06", "-20250514", "-0125").
func isSnapshot(rest string) bool {
	return len(rest) > 1 && rest[0] == '-' && strings.Trim(rest, "-0123456789") == "" && rest[1] != '-'
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// describe names the table for status and logs.
func (t *Table) Describe() string {
	s := t.source + " (" + t.date + ")"
	if n := len(t.overrides); n > 0 {
		k := 0
		for _, l := range t.overrides {
			k += len(l)
		}
		s += fmt.Sprintf(", %d overrides", k)
	}
	if n := len(t.warnings); n > 0 {
		s += fmt.Sprintf(", %d models skipped (see the daemon log)", n)
	}
	return s
}

// Source names where t came from: the embedded release or pricing_file.
func (t *Table) Source() string { return t.source }

// Warnings are the entries of t's source skipped at load, and why.
func (t *Table) Warnings() []string { return t.warnings }

// ProviderNames are the Tokfence provider names the embedded table's
// providers are read as.
func ProviderNames() []string {
	out := make([]string, 0, len(genaiProviderIDs))
	for _, id := range genaiProviderIDs {
		out = append(out, tokfenceProviderName(id))
	}
	return out
}
