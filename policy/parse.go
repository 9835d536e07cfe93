package policy

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/BurntSushi/toml"

	"github.com/tokfence/tokfence/policy/tomlfile"
)

// maxFileSize bounds a policy file: a real one is a few KiB, and Parse is
// fuzzed with agent-writable input, so anything far larger is refused unread.
const maxFileSize = 1 << 20

// fileVersion is the only schema version this package reads.
const fileVersion = 1

// rawFile is the policy file's schema as the TOML decoder sees it. Pointers
// tell "absent" from "zero". Every key the decoder does not consume is an
// error, so a typo never silently falls back to a default.
type rawFile struct {
	Version       *int                `toml:"version"`
	FullAuditFrom *string             `toml:"full_audit_from"`
	CanaryEnv     *[]string           `toml:"canary_env"`
	ReadOnly      *[]string           `toml:"read_only"`
	Limits        rawLimits           `toml:"limits"`
	Rules         []rawRule           `toml:"rule"`
	Agents        map[string]rawAgent `toml:"agent"`
}

type rawLimits struct {
	Green  *rawLimit `toml:"green"`
	Yellow *rawLimit `toml:"yellow"`
	Orange *rawLimit `toml:"orange"`
}

type rawLimit struct {
	PerMinute *int `toml:"per_minute"`
	Burst     *int `toml:"burst"`
}

type rawRule struct {
	Match    *rawMatch `toml:"match"`
	MinCount *int      `toml:"min_count"`
	To       *string   `toml:"to"`
	Block    bool      `toml:"block"`
	Redact   bool      `toml:"redact"`
	Reason   string    `toml:"reason"`
}

type rawMatch struct {
	Kind      string `toml:"kind"`
	Class     string `toml:"class"`
	Rule      string `toml:"rule"`
	Direction string `toml:"direction"`
}

type rawAgent struct {
	Limits rawLimits `toml:"limits"`
	Rules  []rawRule `toml:"rule"`
}

// LoadFile reads and parses the policy file at name. Errors name the file
// and, where there is one, the line.
func LoadFile(name string) (*Policy, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("load policy: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("load policy %s: %w", name, err)
	}
	return Parse(data, name)
}

// Parse builds a Policy from the TOML in data; filename is used only in
// error messages and Source. Parsing is strict: unknown keys, unknown
// states, kinds or classes, bad globs and out-of-range limits are all
// errors, and the returned error (a tomlfile.Errors) lists every problem
// with its line. On error the returned Policy is nil: nothing is half-applied.
func Parse(data []byte, filename string) (*Policy, error) {
	if len(data) > maxFileSize {
		return nil, tomlfile.Errors{{File: filename, Msg: fmt.Sprintf("file is larger than %d bytes", maxFileSize)}}
	}
	var raw rawFile
	md, err := toml.Decode(string(data), &raw)
	if err != nil {
		return nil, tomlfile.DecodeError(filename, data, err)
	}
	ps := &problems{file: filename, ix: tomlfile.NewIndex(data)}
	undecoded(ps, md.Undecoded())
	p := build(ps, &raw)
	if err := ps.err(); err != nil {
		return nil, err
	}
	sum := sha256.Sum256(data)
	p.source, p.digest = filename, hex.EncodeToString(sum[:])
	return p, nil
}

// undecoded reports every key the schema does not know, once: an unknown
// table is reported, not each key inside it.
func undecoded(ps *problems, keys []toml.Key) {
	seen := map[string]bool{}
	for _, k := range keys {
		s := k.String()
		seen[s] = true
		if len(k) > 1 && seen[toml.Key(k[:len(k)-1]).String()] {
			continue
		}
		ps.add(ps.ix.Locate(k), "unknown key%s", hint(k))
	}
}

// schemaKeys are the key names the schema knows, for suggestions.
var schemaKeys = []string{
	"version", "full_audit_from", "canary_env", "read_only", "limits", "rule", "agent",
	"green", "yellow", "orange", "per_minute", "burst",
	"match", "min_count", "to", "block", "redact", "reason",
	"kind", "class", "direction",
}

// hint suggests the known key a misspelt one was probably meant to be.
func hint(k toml.Key) string {
	bad := strings.ToLower(k[len(k)-1])
	for _, good := range schemaKeys {
		if d := editDistance(bad, good); d > 0 && d <= max(1, len(good)/4) {
			return fmt.Sprintf(" (did you mean %q?)", good)
		}
	}
	return ""
}

// editDistance returns the optimal-string-alignment distance between short
// strings a and b (a swap of neighbours costs 1, as in "verison"), or a
// large number if either is too long to be worth comparing.
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 1 << 30
	}
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}
