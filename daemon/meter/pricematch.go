package meter

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"regexp/syntax"
	"strings"
)

// Match rules of the genai-prices format: which table entry prices a
// model name. The name an agent sends is untrusted input, so every rule
// runs in time linear in it (RE2, no backtracking).

// errRE2 marks a regex that is valid elsewhere but uses syntax RE2 lacks.
var errRE2 = errors.New("uses regex syntax Go's RE2 does not support")

// ruleCompiler compiles match rules, noting the regexes RE2 lacks.
type ruleCompiler struct{ lacks []error }

// matchKind is the kind of one match rule.
type matchKind uint8

const (
	matchEquals matchKind = iota
	matchPrefix
	matchSuffix
	matchContains
	matchRegex
	matchNotRegex // "^(?!R)": the model does not match ^R
	matchAny      // a regex RE2 lacks, read as matching anything
	matchOr
	matchAnd
)

var matchKinds = map[string]matchKind{
	"equals": matchEquals, "starts_with": matchPrefix, "ends_with": matchSuffix,
	"contains": matchContains, "regex": matchRegex, "or": matchOr, "and": matchAnd,
}

// matcher is a compiled match rule. The string rules compare
// case-insensitively (s is lowercased and so is the model); a regex is
// tested, unanchored, against the lowercased model, as genai-prices does.
type matcher struct {
	kind matchKind
	s    string
	re   *regexp.Regexp
	subs []matcher
}

func (m *matcher) match(model string) bool {
	switch m.kind {
	case matchEquals:
		return model == m.s
	case matchPrefix:
		return strings.HasPrefix(model, m.s)
	case matchSuffix:
		return strings.HasSuffix(model, m.s)
	case matchContains:
		return strings.Contains(model, m.s)
	case matchRegex:
		return m.re.MatchString(model)
	case matchNotRegex:
		return !m.re.MatchString(model)
	case matchOr:
		for i := range m.subs {
			if m.subs[i].match(model) {
				return true
			}
		}
		return false
	case matchAnd:
		for i := range m.subs {
			if !m.subs[i].match(model) {
				return false
			}
		}
		return true
	case matchAny:
		return true
	}
	return false
}

func (rc *ruleCompiler) compile(raw json.RawMessage) (matcher, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil || obj == nil {
		return matcher{}, fmt.Errorf(`%s is not a rule such as {"equals": "gpt-4o"}`, clip(raw))
	}
	if len(obj) != 1 {
		return matcher{}, fmt.Errorf("%s: want exactly one rule kind", clip(raw))
	}
	for k, v := range obj {
		kind, ok := matchKinds[k]
		if !ok {
			return matcher{}, fmt.Errorf("unknown match kind %q (want equals, starts_with, ends_with, contains, regex, or, and)", k)
		}
		if kind == matchOr || kind == matchAnd {
			return rc.compileList(kind, k, v)
		}
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			return matcher{}, fmt.Errorf("%s: want a string, got %s", k, clip(v))
		}
		if s == "" {
			return matcher{}, fmt.Errorf("%s: empty pattern", k) // it would match every model
		}
		if kind == matchRegex {
			m, err := compileRegex(s)
			if errors.Is(err, errRE2) {
				rc.lacks = append(rc.lacks, err)
				return matcher{kind: matchAny}, nil
			}
			return m, err
		}
		return matcher{kind: kind, s: strings.ToLower(s)}, nil
	}
	panic("unreachable")
}

func (rc *ruleCompiler) compileList(kind matchKind, name string, v json.RawMessage) (matcher, error) {
	var list []json.RawMessage
	if err := json.Unmarshal(v, &list); err != nil || len(list) == 0 {
		return matcher{}, fmt.Errorf("%s: want a non-empty list of rules, got %s", name, clip(v))
	}
	m := matcher{kind: kind, subs: make([]matcher, len(list))}
	for i, r := range list {
		sub, err := rc.compile(r)
		if err != nil {
			return matcher{}, err
		}
		m.subs[i] = sub
	}
	return m, nil
}

// compileRegex compiles expr with RE2. One form RE2 lacks is common in
// genai-prices and has an exact RE2 equivalent: a whole pattern "^(?!R)"
// (the model does not start with a match of R) becomes "not ^(?:R)". R
// must compile on its own, so its parentheses balance and the final ")"
// is the one that closes "(?!".
func compileRegex(expr string) (matcher, error) {
	re, err := regexp.Compile(expr)
	if err == nil {
		return matcher{kind: matchRegex, re: re}, nil
	}
	if inner, ok := strings.CutPrefix(expr, "^(?!"); ok && strings.HasSuffix(inner, ")") && !strings.Contains(inner, `\Q`) {
		inner = inner[:len(inner)-1]
		if _, ierr := regexp.Compile(inner); ierr == nil {
			return matcher{kind: matchNotRegex, re: regexp.MustCompile("^(?:" + inner + ")")}, nil
		}
	}
	if re2Lacks(err) {
		return matcher{}, fmt.Errorf("regex %q %w (%v)", expr, errRE2, err)
	}
	return matcher{}, fmt.Errorf("bad regex %q: %v", expr, err)
}

// re2Lacks reports whether err is RE2 refusing syntax that other regex
// dialects accept: lookahead, lookbehind, atomic groups, inline flags
// other than imsU, backreferences and possessive quantifiers.
func re2Lacks(err error) bool {
	var se *syntax.Error
	if !errors.As(err, &se) {
		return false
	}
	switch se.Code {
	case syntax.ErrInvalidPerlOp:
		return true
	case syntax.ErrInvalidNamedCapture:
		return strings.HasPrefix(se.Expr, "(?<=") || strings.HasPrefix(se.Expr, "(?<!")
	case syntax.ErrInvalidEscape:
		return len(se.Expr) == 2 && (se.Expr[1] >= '1' && se.Expr[1] <= '9' || se.Expr[1] == 'k')
	case syntax.ErrInvalidRepeatOp:
		return len(se.Expr) == 2 && se.Expr[1] == '+'
	}
	return false
}
