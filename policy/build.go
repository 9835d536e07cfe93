package policy

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/tokfence/tokfence/policy/pathglob"
	"github.com/tokfence/tokfence/policy/tomlfile"
)

// maxCount bounds per_minute, burst and min_count. Larger numbers are almost
// certainly typos; "unlimited" is spelt 0.
const maxCount = 1_000_000

// build validates raw and turns it into a Policy, recording every problem
// in ps. The result is meaningless if ps has errors.
func build(ps *problems, raw *rawFile) *Policy {
	p := newDefault()
	switch {
	case raw.Version == nil:
		ps.add("version", "missing (this tokfence reads version = %d)", fileVersion)
	case *raw.Version != fileVersion:
		ps.add("version", "unsupported version %d (this tokfence reads version = %d)", *raw.Version, fileVersion)
	}
	if raw.FullAuditFrom != nil {
		p.auditFrom = parseStateAt(ps, "full_audit_from", *raw.FullAuditFrom)
	}
	if raw.CanaryEnv != nil {
		p.canaryEnv = canaryNames(ps, *raw.CanaryEnv)
	}
	if raw.ReadOnly != nil {
		p.readOnly = nil
		for i, s := range *raw.ReadOnly {
			e, err := pathglob.ParseEndpoint(s)
			if err != nil {
				ps.add(tomlfile.Path("read_only").At(i), "%v", err)
			}
			p.readOnly = append(p.readOnly, e)
		}
	}
	p.limits = mergeLimits(ps, "limits", p.limits, &raw.Limits)
	p.rules = buildRules(ps, "rule", raw.Rules)
	p.agents = map[string]*agentPolicy{}
	for name, ra := range raw.Agents {
		at := tomlfile.Path("agent").Key(name)
		if strings.TrimSpace(name) == "" {
			ps.add(at, "agent name is empty")
		}
		p.agents[name] = &agentPolicy{
			rules:  buildRules(ps, at.Key("rule"), ra.Rules),
			limits: mergeLimits(ps, at.Key("limits"), p.limits, &ra.Limits),
		}
	}
	return p
}

func parseStateAt(ps *problems, at tomlfile.Path, name string) State {
	s, err := ParseState(name)
	if err != nil {
		ps.add(at, "%v", err)
	}
	return s
}

var envName = regexp.MustCompile(`^[A-Z_][A-Z0-9_]*$`)

func canaryNames(ps *problems, names []string) []string {
	seen := map[string]bool{}
	for i, n := range names {
		at := tomlfile.Path("canary_env").At(i)
		switch {
		case !envName.MatchString(n):
			ps.add(at, "%q is not an environment variable name (want upper case, digits and '_')", n)
		case sdkEnvNames[n]:
			ps.add(at, "%s is read by official SDKs or CLIs, so honest code would send the canary; pick a name nothing reads", n)
		case seen[n]:
			ps.add(at, "%s is listed twice", n)
		}
		seen[n] = true
	}
	return append([]string(nil), names...)
}

// mergeLimits overlays the limits in raw, key by key, on base. A riskier
// state never gets a looser limit: one this table sets explicitly is an
// error, one it inherits is tightened to match, so setting only
// limits.yellow to 5/min also brings ORANGE down to 5/min.
func mergeLimits(ps *problems, at tomlfile.Path, base [numStates]Limit, raw *rawLimits) [numStates]Limit {
	out := base
	var set [numStates]bool
	tables := [...]*rawLimit{Green: raw.Green, Yellow: raw.Yellow, Orange: raw.Orange}
	for s, rl := range tables {
		if rl == nil {
			continue
		}
		set[s] = true
		sat := at.Key(strings.ToLower(State(s).String()))
		before := len(ps.errs)
		if rl.PerMinute != nil {
			// A new rate with no burst of its own gets the default burst
			// (one minute's worth), not a burst inherited for another rate.
			out[s] = Limit{PerMinute: countAt(ps, sat.Key("per_minute"), *rl.PerMinute, 0)}
		}
		if rl.Burst != nil {
			out[s].Burst = countAt(ps, sat.Key("burst"), *rl.Burst, 0)
		}
		if len(ps.errs) > before {
			return out // the checks below would only repeat the problem
		}
		if out[s].Unlimited() && out[s].Burst > 0 {
			ps.add(sat.Key("burst"), "burst %d needs a per_minute above 0 (per_minute = 0 means unlimited)", out[s].Burst)
		}
	}
	for s := Yellow; s <= Orange; s++ {
		switch {
		case !looser(out[s], out[s-1]):
		case set[s]:
			ps.add(at.Key(strings.ToLower(s.String())),
				"%s limit %s is looser than %s limit %s; a riskier state cannot get more",
				s, out[s], s-1, out[s-1])
		default:
			out[s] = tighter(out[s], out[s-1])
		}
	}
	out[Red] = out[Orange]
	return out
}

func countAt(ps *problems, at tomlfile.Path, n, lo int) int {
	if n < lo || n > maxCount {
		ps.add(at, "%d is out of range (want %d to %d)", n, lo, maxCount)
	}
	return n
}

func buildRules(ps *problems, at tomlfile.Path, raws []rawRule) []rule {
	var out []rule
	for i := range raws {
		r := buildRule(ps, at.At(i), &raws[i])
		r.where = fmt.Sprintf("%s at %s:%d", at.At(i), ps.file, ps.ix.Line(at.At(i)))
		out = append(out, r)
	}
	return out
}

var classes = map[string]bool{
	ClassProviderKey: true, ClassCapabilityToken: true, ClassCanary: true, ClassFormat: true,
}

func buildRule(ps *problems, at tomlfile.Path, raw *rawRule) rule {
	r := rule{minCount: 1, block: raw.Block, redact: raw.Redact, reason: raw.Reason}
	if raw.To == nil {
		ps.add(at.Key("to"), "missing (want GREEN, YELLOW, ORANGE or RED)")
	} else {
		r.to = parseStateAt(ps, at.Key("to"), *raw.To)
	}
	if raw.MinCount != nil {
		r.minCount = countAt(ps, at.Key("min_count"), *raw.MinCount, 1)
	}
	m := raw.Match
	if m == nil || *m == (rawMatch{}) {
		ps.add(at.Key("match"), "missing or empty; say which events the rule is for (kind, class, rule or direction)")
		return r
	}
	mat := at.Key("match")
	if m.Kind != "" {
		k, err := parseKind(m.Kind)
		if err != nil {
			ps.add(mat.Key("kind"), "%v", err)
		}
		r.kind = k
	}
	r.class, r.direction, r.glob = m.Class, m.Direction, m.Rule
	if m.Class != "" && !classes[m.Class] {
		ps.add(mat.Key("class"), "unknown class %q (want provider_key, capability_token, canary or format)", m.Class)
	}
	if m.Class != "" && r.kind != 0 && r.kind != SensorHit {
		ps.add(mat.Key("class"), "only sensor_hit events have a class, but kind is %s", r.kind)
	}
	if m.Direction != "" && m.Direction != DirRequest && m.Direction != DirResponse {
		ps.add(mat.Key("direction"), "unknown direction %q (want request or response)", m.Direction)
	}
	if m.Rule != "" {
		if err := checkRuleGlob(m.Rule); err != nil {
			ps.add(mat.Key("rule"), "%v", err)
		}
	}
	if raw.To != nil && r.to < Red && hardFloor(r.kind, m.Class) {
		ps.add(at.Key("to"), "%s events are always RED; a rule cannot lower them", floorName(r.kind, m.Class))
	}
	return r
}

func hardFloor(k Kind, class string) bool {
	return k == Canary || class == ClassCanary || class == ClassProviderKey || class == ClassCapabilityToken
}

func floorName(k Kind, class string) string {
	if class != "" {
		return class
	}
	return k.String()
}

// checkRuleGlob reports why glob is not a usable sensor-rule glob, or nil:
// it must be a glob of the one language (pathglob.Check), and have no '/',
// which no sensor rule or violation name has, so such a glob would never
// match and the rule would silently never apply.
func checkRuleGlob(glob string) error {
	if err := pathglob.Check(glob); err != nil {
		return err
	}
	if strings.Contains(glob, "/") {
		return fmt.Errorf("glob %q: sensor rule names have no '/', so it would never match", glob)
	}
	return nil
}
