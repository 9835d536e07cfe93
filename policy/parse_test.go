package policy

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tokfence/tokfence/policy/tomlfile"
)

const testdata = "../testdata/policy"

func TestParseErrorFiles(t *testing.T) {
	tests := []struct {
		file string
		want string // the first line of the error, exactly
	}{
		{"bad-syntax.toml", "bad-syntax.toml:5: expected value but found '=' instead"},
		{"unknown-key.toml", "unknown-key.toml:7: rule[2].to: missing (want GREEN, YELLOW, ORANGE or RED)"},
		{"bad-state.toml", `bad-state.toml:11: rule[2].to: unknown state "PURPLE" (want GREEN, YELLOW, ORANGE or RED)`},
		{"bad-glob.toml", `bad-glob.toml:5: read_only[2]: bad endpoint "GET /v1/models/[a-z]*": glob "/v1/models/[a-z]*": '[' is not supported (only '*' is special)`},
		{"negative-limit.toml", "negative-limit.toml:4: agent.coder.limits.orange.per_minute: -5 is out of range (want 0 to 1000000)"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join(testdata, tt.file))
			if err != nil {
				t.Fatal(err)
			}
			p, err := Parse(data, tt.file)
			if err == nil || p != nil {
				t.Fatalf("Parse(%s) = %v, nil; want an error", tt.file, p)
			}
			if got, _, _ := strings.Cut(err.Error(), "\n"); got != tt.want {
				t.Errorf("Parse(%s) error:\n got %s\nwant %s", tt.file, got, tt.want)
			}
		})
	}
}

func TestParseErrorLines(t *testing.T) {
	tests := []struct {
		name string
		toml string
		want string // a substring of the error, which must include the line
	}{
		{"syntax error", "version = 1\n\n[limits\n", "p.toml:3: "},
		{"unknown top-level key", "version = 1\nverison = 2\n", `p.toml:2: verison: unknown key (did you mean "version"?)`},
		{"unknown table is reported once", "version = 1\n[bogus]\nx = 1\ny = 2\n", "p.toml:2: bogus: unknown key"},
		{"unknown key in an inline match", "version = 1\n[[rule]]\nto = \"RED\"\nmatch = { kind = \"canary\", colour = \"red\" }\n",
			"p.toml:4: rule[1].match.colour: unknown key"},
		{"unknown key in an agent", "version = 1\n[agent.coder]\nlimit = 3\n", `p.toml:3: agent.coder.limit: unknown key (did you mean "limits"?)`},
		{"unknown key in the third rule", "version = 1\n" + strings.Repeat("[[rule]]\nmatch = { kind = \"canary\" }\nto = \"RED\"\n", 2) +
			"[[rule]]\nmatch = { kind = \"canary\" }\nto = \"RED\"\nblok = true\n", "p.toml:11: rule[3].blok: unknown key"},
		{"bad state in an agent rule", "version = 1\n[[agent.\"my agent\".rule]]\nmatch = { kind = \"auth_failure\" }\nto = \"Blue\"\n",
			`p.toml:4: agent."my agent".rule[1].to: unknown state "Blue"`},
		{"bad kind", "version = 1\n[[rule]]\nmatch = { kind = \"sensorhit\" }\nto = \"RED\"\n", `p.toml:3: rule[1].match.kind: unknown kind "sensorhit"`},
		{"bad class", "version = 1\n[[rule]]\nto = \"RED\"\n[rule.match]\nclass = \"api_key\"\n", `p.toml:5: rule[1].match.class: unknown class "api_key"`},
		{"bad direction", "version = 1\n[[rule]]\nmatch = { direction = \"out\" }\nto = \"RED\"\n", `p.toml:3: rule[1].match.direction: unknown direction "out"`},
		{"bad rule glob", "version = 1\n[[rule]]\nmatch = { rule = \"aws-[a-z]\" }\nto = \"RED\"\n", `p.toml:3: rule[1].match.rule: glob "aws-[a-z]": '[' is not supported (only '*' is special)`},
		{"double star in a rule glob", "version = 1\n[[rule]]\nmatch = { rule = \"aws-**\" }\nto = \"RED\"\n", `p.toml:3: rule[1].match.rule: glob "aws-**": use a single '*'`},
		{"slash in a rule glob", "version = 1\n[[rule]]\nmatch = { rule = \"aws/*\" }\nto = \"RED\"\n", `p.toml:3: rule[1].match.rule: glob "aws/*": sensor rule names have no '/'`},
		{"control byte in an endpoint glob", "version = 1\nread_only = [\"GET /v1/\\u0001\"]\n", `p.toml:2: read_only[1]: bad endpoint "GET /v1/\x01": glob "/v1/\x01": byte 0x01 at offset 4 is not printable ASCII`},
		{"double star in an endpoint glob", "version = 1\nread_only = [\"GET /v1/**\"]\n", `p.toml:2: read_only[1]: bad endpoint "GET /v1/**": glob "/v1/**": use a single '*'`},
		{"empty match", "version = 1\n[[rule]]\nto = \"RED\"\nmatch = {}\n", "p.toml:4: rule[1].match: missing or empty"},
		{"class on a non-sensor kind", "version = 1\n[[rule]]\nmatch = { kind = \"scope_violation\", class = \"format\" }\nto = \"RED\"\n",
			"p.toml:3: rule[1].match.class: only sensor_hit events have a class"},
		{"lowering a floor", "version = 1\n[[rule]]\nmatch = { class = \"provider_key\" }\nto = \"YELLOW\"\n",
			"p.toml:4: rule[1].to: provider_key events are always RED"},
		{"lowering the canary floor", "version = 1\n[[rule]]\nmatch = { kind = \"canary\" }\nto = \"ORANGE\"\n",
			"p.toml:4: rule[1].to: canary events are always RED"},
		{"min_count below one", "version = 1\n[[rule]]\nmatch = { kind = \"canary\" }\nto = \"RED\"\nmin_count = 0\n",
			"p.toml:5: rule[1].min_count: 0 is out of range (want 1 to 1000000)"},
		{"wrong type", "version = 1\n[limits.yellow]\nper_minute = \"30\"\n", "p.toml:3: limits.yellow.per_minute: incompatible types"},
		{"negative burst", "version = 1\n[limits.yellow]\nburst = -1\n", "p.toml:3: limits.yellow.burst: -1 is out of range"},
		{"burst without a rate", "version = 1\n[limits.green]\nburst = 5\n", "p.toml:3: limits.green.burst: burst 5 needs a per_minute above 0"},
		{"riskier state looser", "version = 1\n[limits.green]\nper_minute = 20\n[limits.yellow]\nper_minute = 40\n",
			"p.toml:4: limits.yellow: YELLOW limit 40/min, burst 40 is looser than GREEN limit 20/min, burst 20"},
		{"bad endpoint method", "version = 1\nread_only = [\"get /v1/models\"]\n", `p.toml:2: read_only[1]: bad endpoint "get /v1/models": unknown method "get"`},
		{"endpoint without a method", "version = 1\nread_only = [\n  \"GET */models\",\n  \"/v1/models\",\n]\n", `p.toml:4: read_only[2]: bad endpoint "/v1/models"`},
		{"relative endpoint glob", "version = 1\nread_only = [\"GET v1/models\"]\n", `p.toml:2: read_only[1]: bad endpoint "GET v1/models": glob "v1/models" must start with '/' or '*'`},
		{"canary read by an SDK", "version = 1\ncanary_env = [\n  \"ANTHROPIC_ADMIN_KEY\",\n  \"AWS_SECRET_ACCESS_KEY\",\n]\n",
			"p.toml:4: canary_env[2]: AWS_SECRET_ACCESS_KEY is read by official SDKs"},
		{"canary not an env name", "version = 1\ncanary_env = [\"my-key\"]\n", `p.toml:2: canary_env[1]: "my-key" is not an environment variable name`},
		{"missing version", "[limits.yellow]\nper_minute = 3\n", "p.toml: version: missing"},
		{"future version", "\nversion = 2\n", "p.toml:2: version: unsupported version 2"},
		{"bad full_audit_from", "version = 1\nfull_audit_from = \"loud\"\n", `p.toml:2: full_audit_from: unknown state "loud"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Parse([]byte(tt.toml), "p.toml")
			if err == nil || p != nil {
				t.Fatalf("Parse = %v, nil; want an error containing %q", p, tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Parse error:\n got %s\nwant it to contain %s", err, tt.want)
			}
			var pe *tomlfile.Error
			if !errors.As(err, &pe) || pe.File != "p.toml" {
				t.Errorf("errors.As(*tomlfile.Error) = %v, want one for p.toml", pe)
			}
		})
	}
}

func TestParseReportsEveryProblemInLineOrder(t *testing.T) {
	src := "version = 1\n[[rule]]\nmatch = { kind = \"nope\" }\nto = \"PINK\"\nextra = 1\n"
	_, err := Parse([]byte(src), "p.toml")
	var es tomlfile.Errors
	if !errors.As(err, &es) {
		t.Fatalf("Parse error %T, want Errors", err)
	}
	var got []int
	for _, e := range es {
		got = append(got, e.Line)
	}
	if len(got) != 3 || got[0] != 3 || got[1] != 4 || got[2] != 5 {
		t.Errorf("error lines = %v, want [3 4 5]:\n%v", got, err)
	}
}

func TestExampleFile(t *testing.T) {
	p, err := LoadFile(filepath.Join(testdata, "example.toml"))
	if err != nil {
		t.Fatalf("LoadFile(example.toml): %v", err)
	}
	if len(p.Digest()) != 64 || !strings.HasSuffix(p.Source(), "example.toml") {
		t.Errorf("Digest, Source = %q, %q", p.Digest(), p.Source())
	}
	if got := p.RateLimit("coder", Yellow); got != (Limit{PerMinute: 20}) {
		t.Errorf("coder YELLOW limit = %+v, want 20/min", got)
	}
	if got := p.RateLimit("reviewer", Green); got != (Limit{PerMinute: 60, Burst: 20}) {
		t.Errorf("reviewer GREEN limit = %+v, want 60/min burst 20", got)
	}
	pem := Event{SensorHit, "pem-private-key", ClassFormat, DirRequest}
	if d := p.Decide("x", pem, 1); d.To != Orange || !d.Block || !d.Redact {
		t.Errorf("example Decide(%v) = %+v, want ORANGE, blocked, redacted", pem, d)
	}
	if d := p.Decide("coder", Event{Kind: ScopeViolation}, 1); d.To != Orange {
		t.Errorf("example coder scope violation = %v, want ORANGE", d.To)
	}
	if got := p.CanaryEnv(); len(got) != 4 || got[0] != "ANTHROPIC_ADMIN_KEY" {
		t.Errorf("CanaryEnv() = %v", got)
	}
}

func TestDefaultCanaryNamesAreAllowed(t *testing.T) {
	for _, n := range Default().CanaryEnv() {
		if sdkEnvNames[n] || !envName.MatchString(n) {
			t.Errorf("default canary %s would be refused in a file", n)
		}
	}
}

func TestLoadFileMissing(t *testing.T) {
	_, err := LoadFile(filepath.Join(t.TempDir(), "nope.toml"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("LoadFile(missing) = %v, want fs.ErrNotExist", err)
	}
}

func TestParseRefusesHugeFiles(t *testing.T) {
	big := make([]byte, maxFileSize+1)
	if _, err := Parse(big, "big.toml"); err == nil || !strings.Contains(err.Error(), "big.toml: file is larger") {
		t.Errorf("Parse(huge) = %v, want a size error", err)
	}
}
