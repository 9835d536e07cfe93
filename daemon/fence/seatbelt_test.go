package fence

import (
	"fmt"
	"math/rand"
	"path"
	"slices"
	"strings"
	"testing"
)

// sexp is one SBPL datum as sandbox-exec's reader would see it: an atom,
// a string literal (text unescaped) or a list.
type sexp struct {
	kind  byte // 'a' atom, 's' string, 'l' list
	text  string
	items []sexp
}

// parseSBPL reads text as a sequence of s-expressions. It fails on an
// unbalanced parenthesis, an unclosed string, a raw control character in a
// string and on reader syntax the generator never emits (#, quote forms).
func parseSBPL(text string) ([]sexp, error) {
	stack := [][]sexp{nil}
	add := func(x sexp) { stack[len(stack)-1] = append(stack[len(stack)-1], x) }
	for i := 0; i < len(text); {
		n, err := 1, error(nil)
		switch c := text[i]; {
		case c == ' ' || c == '\t' || c == '\n':
		case c == ';':
			n = strings.IndexByte(text[i:]+"\n", '\n')
		case c == '(':
			stack = append(stack, nil)
		case c == ')' && len(stack) == 1:
			return nil, fmt.Errorf("offset %d: ) with no (", i)
		case c == ')':
			list := sexp{kind: 'l', items: stack[len(stack)-1]}
			stack = stack[:len(stack)-1]
			add(list)
		case c == '"':
			var str string
			str, n, err = readSBPLString(text[i:])
			add(sexp{kind: 's', text: str})
		case strings.IndexByte("#'`,", c) >= 0 || c < 0x20:
			err = fmt.Errorf("unexpected %q", c)
		default:
			n = strings.IndexAny(text[i:]+" ", " \t\n();\"")
			add(sexp{kind: 'a', text: text[i : i+n]})
		}
		if err != nil {
			return nil, fmt.Errorf("offset %d: %v", i, err)
		}
		i += n
	}
	if len(stack) != 1 {
		return nil, fmt.Errorf("%d ( left open", len(stack)-1)
	}
	return stack[0], nil
}

// readSBPLString reads the string literal at the start of s the way
// TinyScheme does for what the generator emits: a backslash takes the next
// character as is. It returns the value and the bytes consumed.
func readSBPLString(s string) (string, int, error) {
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"':
			return b.String(), i + 1, nil
		case c < 0x20 || c == 0x7f:
			return "", 0, fmt.Errorf("raw control byte %#x in string", c)
		case c == '\\':
			if i+1 == len(s) {
				return "", 0, fmt.Errorf("string ends in a backslash")
			}
			if strings.IndexByte("ntrx01234567", s[i+1]) >= 0 {
				return "", 0, fmt.Errorf("escape \\%c is never emitted", s[i+1])
			}
			i++
			b.WriteByte(s[i])
		default:
			b.WriteByte(c)
		}
	}
	return "", 0, fmt.Errorf("unclosed string")
}

// sbRule is one top-level (allow|deny OP FILTER...) form.
type sbRule struct {
	action, op string
	filters    []sexp
}

// String renders r back to compact SBPL, for messages and comparisons.
func (r sbRule) String() string {
	parts := []string{r.action, r.op}
	for _, f := range r.filters {
		parts = append(parts, f.String())
	}
	return "(" + strings.Join(parts, " ") + ")"
}

// String renders x back to SBPL.
func (x sexp) String() string {
	switch x.kind {
	case 's':
		return sbString(x.text)
	case 'l':
		parts := make([]string, len(x.items))
		for i, it := range x.items {
			parts[i] = it.String()
		}
		return "(" + strings.Join(parts, " ") + ")"
	}
	return x.text
}

// profileRules generates a profile and parses it into its rules, failing
// the test on any error or on a top-level form that is not a rule.
func profileRules(t *testing.T, p SeatbeltParams) (string, []sbRule) {
	t.Helper()
	text, err := SeatbeltProfile(p)
	if err != nil {
		t.Fatalf("SeatbeltProfile: %v", err)
	}
	forms, err := parseSBPL(text)
	if err != nil {
		t.Fatalf("profile does not parse: %v\n%s", err, text)
	}
	if len(forms) < 2 || forms[0].String() != "(version 1)" {
		t.Fatalf("profile does not open with (version 1):\n%s", text)
	}
	var rules []sbRule
	for _, f := range forms[1:] {
		rules = append(rules, toRule(t, f))
	}
	return text, rules
}

// toRule checks f is (allow|deny OP FILTER...) with one operation.
func toRule(t *testing.T, f sexp) sbRule {
	t.Helper()
	ok := f.kind == 'l' && len(f.items) >= 2 && f.items[0].kind == 'a' && f.items[1].kind == 'a'
	if !ok || (f.items[0].text != "allow" && f.items[0].text != "deny") {
		t.Fatalf("top-level form is not a rule: %s", f)
	}
	r := sbRule{action: f.items[0].text, op: f.items[1].text, filters: f.items[2:]}
	for _, x := range r.filters {
		if x.kind != 'l' {
			t.Fatalf("rule %s has a second operation or a bare value", r)
		}
	}
	return r
}

// filterValues returns the string of every one-argument filter named kind
// in rules with the given action and op, in profile order.
func filterValues(rules []sbRule, action, op, kind string) []string {
	var vals []string
	for _, r := range rules {
		if r.action != action || r.op != op {
			continue
		}
		for _, f := range r.filters {
			if len(f.items) == 2 && f.items[0].text == kind && f.items[1].kind == 's' {
				vals = append(vals, f.items[1].text)
			}
		}
	}
	return vals
}

var testParams = SeatbeltParams{Port: 9471, Home: "/Users/me", Hidden: []string{"/Users/me/.ssh"}}

func TestSeatbeltParserRejects(t *testing.T) {
	tests := []struct{ name, text string }{
		{"unclosed list", `(deny file* (subpath "/a")`},
		{"extra close", `(deny file*))`},
		{"unclosed string", `(deny file* (subpath "/a))`},
		{"quote escaped at end", `(deny file* (subpath "/a\"))`},
		{"raw newline in string", "(deny file* (subpath \"/a\nb\"))"},
		{"regex literal", `(deny file* (regex #"^/a"))`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := parseSBPL(tt.text); err == nil {
				t.Errorf("parseSBPL(%q) = nil error, want one", tt.text)
			}
		})
	}
}

func TestSeatbeltSyntax(t *testing.T) {
	tests := []struct {
		name string
		p    SeatbeltParams
	}{
		{"defaults", testParams},
		{"no hidden paths", SeatbeltParams{Port: 1, Home: "/Users/me"}},
		{"quote and backslash", SeatbeltParams{Port: 65535, Home: `/Users/a"b\c`, Hidden: []string{`/x\"y`, `/p")(allow default)`}}},
		{"spaces and non-ASCII", SeatbeltParams{Port: 80, Home: "/Users/José Ñ", Hidden: []string{"/Users/José Ñ/Library/Application Support/x"}}},
		{"root hidden", SeatbeltParams{Port: 80, Home: "/Users/me", Hidden: []string{"/"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, rules := profileRules(t, tt.p)
			if rules[0].String() != "(allow default)" {
				t.Errorf("first rule = %s, want (allow default): later rules win, so it must come first", rules[0])
			}
			for _, r := range rules[1:] {
				if r.op == "default" {
					t.Errorf("second default rule %s", r)
				}
			}
		})
	}
}

func TestSeatbeltNetwork(t *testing.T) {
	for _, port := range []int{1, 443, 9471, 65535} {
		t.Run(fmt.Sprint(port), func(t *testing.T) {
			text, rules := profileRules(t, SeatbeltParams{Port: port, Home: "/Users/me"})
			var net []string
			for _, r := range rules {
				if strings.HasPrefix(r.op, "network") {
					net = append(net, r.String())
				}
			}
			want := []string{
				"(deny network*)",
				fmt.Sprintf(`(allow network-outbound (remote tcp "localhost:%d"))`, port),
			}
			if !slices.Equal(net, want) {
				t.Errorf("network rules = %q, want %q in that order", net, want)
			}
			if other := fmt.Sprintf("localhost:%d", port+1); strings.Contains(text, other) {
				t.Errorf("profile names a second port %s", other)
			}
		})
	}
}

// The only allow besides the default is the forwarder: no file, mach or
// network allow can reopen what a deny closed.
func TestSeatbeltAllows(t *testing.T) {
	_, rules := profileRules(t, testParams)
	var allows []string
	for _, r := range rules {
		if r.action == "allow" {
			allows = append(allows, r.String())
		}
	}
	want := []string{"(allow default)", `(allow network-outbound (remote tcp "localhost:9471"))`}
	if !slices.Equal(allows, want) {
		t.Errorf("allow rules = %q, want %q", allows, want)
	}
}

// A rule without a filter applies everywhere; only these may have none. An
// empty Hidden must not leave a bare (deny file*) behind.
func TestSeatbeltUnfiltered(t *testing.T) {
	want := []string{"(allow default)", "(deny network*)", "(deny lsopen)", "(deny appleevent-send)", "(deny job-creation)"}
	for _, hidden := range [][]string{nil, {}, {"/a"}} {
		t.Run(fmt.Sprint(len(hidden)), func(t *testing.T) {
			_, rules := profileRules(t, SeatbeltParams{Port: 9471, Home: "/Users/me", Hidden: hidden})
			var bare []string
			for _, r := range rules {
				if len(r.filters) == 0 {
					bare = append(bare, r.String())
				}
			}
			if !slices.Equal(bare, want) {
				t.Errorf("unfiltered rules = %q, want %q", bare, want)
			}
		})
	}
}

func TestSeatbeltHidden(t *testing.T) {
	tests := []struct {
		name   string
		hidden []string
		want   []string // each must be a (deny file* (subpath ...)) exactly once
	}{
		{"plain", []string{"/Users/me/.ssh"},
			[]string{"/Users/me/.ssh", "/System/Volumes/Data/Users/me/.ssh"}},
		{"quote and backslash", []string{`/Users/me/we"ird\dir`},
			[]string{`/Users/me/we"ird\dir`, `/System/Volumes/Data/Users/me/we"ird\dir`}},
		{"file", []string{"/Users/me/.docker/config.json"},
			[]string{"/Users/me/.docker/config.json"}},
		{"duplicates and unclean", []string{"/Users/me/.aws/", "/Users/me/.aws", "/Users//me/x/../.aws"},
			[]string{"/Users/me/.aws"}},
		{"tmp link", []string{"/tmp/x"},
			[]string{"/tmp/x", "/private/tmp/x", "/System/Volumes/Data/private/tmp/x"}},
		{"var link", []string{"/var/folders/ab"},
			[]string{"/var/folders/ab", "/private/var/folders/ab", "/System/Volumes/Data/private/var/folders/ab"}},
		{"given on the data volume", []string{"/System/Volumes/Data/Users/me/.kube"},
			[]string{"/Users/me/.kube", "/System/Volumes/Data/Users/me/.kube"}},
		{"external volume", []string{"/Volumes/USB/keys"},
			[]string{"/Volumes/USB/keys"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			text, rules := profileRules(t, SeatbeltParams{Port: 9471, Home: "/Users/me", Hidden: tt.hidden})
			denied := filterValues(rules, "deny", "file*", "subpath")
			for _, w := range tt.want {
				if n := strings.Count(text, "(subpath "+sbString(w)+")"); n != 1 {
					t.Errorf("subpath %s appears %d times in the text, want 1", sbString(w), n)
				}
				if n := countOf(denied, w); n != 1 {
					t.Errorf("%q denied %d times as parsed, want 1", w, n)
				}
			}
			if !slices.IsSorted(denied) || len(slices.Compact(slices.Clone(denied))) != len(denied) {
				t.Errorf("denied subpaths not sorted and unique: %q", denied)
			}
			for _, d := range denied {
				if path.Clean(d) != d {
					t.Errorf("denied subpath %q is not clean: Seatbelt would never see it so spelled", d)
				}
			}
		})
	}
}

func TestSeatbeltHiddenExternalVolumeHasNoDataAlias(t *testing.T) {
	_, rules := profileRules(t, SeatbeltParams{Port: 9471, Home: "/Users/me", Hidden: []string{"/Volumes/USB/keys"}})
	for _, d := range filterValues(rules, "deny", "file*", "subpath") {
		if strings.HasSuffix(d, "/Volumes/USB/keys") && d != "/Volumes/USB/keys" {
			t.Errorf("external volume path got an alias %q", d)
		}
	}
}

func TestSeatbeltEscaping(t *testing.T) {
	tests := []struct{ in, want string }{
		{`/a`, `"/a"`},
		{`/a"b`, `"/a\"b"`},
		{`/a\b`, `"/a\\b"`},
		{`/a\"b`, `"/a\\\"b"`},
		{`/a\`, `"/a\\"`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got := sbString(tt.in)
			if got != tt.want {
				t.Errorf("sbString(%q) = %s, want %s", tt.in, got, tt.want)
			}
			back, n, err := readSBPLString(got)
			if err != nil || n != len(got) || back != tt.in {
				t.Errorf("reading %s back = %q, %d, %v; want %q, %d", got, back, n, err, tt.in, len(got))
			}
		})
	}
}

// Renaming any directory above a denied path would move the path out from
// under its rule.
func TestSeatbeltAncestors(t *testing.T) {
	_, rules := profileRules(t, SeatbeltParams{Port: 9471, Home: "/Users/me", Hidden: []string{"/Users/me/proj/.env"}})
	locked := filterValues(rules, "deny", "file-write-unlink", "literal")
	for _, w := range []string{
		"/Users/me/proj", "/Users/me", "/Users", "/Users/me/Library",
		"/System/Volumes/Data/Users/me/proj", "/Library", "/Network/Library", "/private/var/db",
	} {
		if countOf(locked, w) != 1 {
			t.Errorf("ancestor %q not locked exactly once in %q", w, locked)
		}
	}
	if slices.Contains(locked, "/") || slices.Contains(locked, "/Users/me/proj/.env") {
		t.Errorf("locked set holds / or the path itself: %q", locked)
	}
}

func TestSeatbeltKeychainFiles(t *testing.T) {
	_, rules := profileRules(t, SeatbeltParams{Port: 9471, Home: "/Users/me"})
	denied := filterValues(rules, "deny", "file*", "subpath")
	tests := []struct {
		path string
		want bool
	}{
		{"/Users/me/Library/Keychains", true},
		{"/System/Volumes/Data/Users/me/Library/Keychains", true},
		{"/Library/Keychains", true},
		{"/System/Volumes/Data/Library/Keychains", true},
		{"/Network/Library/Keychains", true},
		{"/private/var/db/SystemKey", true},
		{"/System/Library/Keychains", false}, // public root certificates
		{"/Users/me/Library", false},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			if got := countOf(denied, tt.path) == 1; got != tt.want {
				t.Errorf("%q denied = %v, want %v (denied: %q)", tt.path, got, tt.want, denied)
			}
		})
	}
}

func TestSeatbeltMachServices(t *testing.T) {
	_, rules := profileRules(t, testParams)
	tests := []struct {
		name string
		want bool
	}{
		{"com.apple.SecurityServer", true},
		{"com.apple.securityd", true},
		{"com.apple.securityd.xpc", true},
		{"com.apple.secd", true},
		{"com.apple.security.agent", true},
		{"com.apple.security.authhost", true},
		{"com.apple.security.keychaind", true},
		{"com.apple.security.cloudkeychainproxy3", true},
		{"com.apple.authd", true},
		{"com.apple.ctkd.token-client", true},
		{"com.apple.trustd", true},
		{"com.apple.trustd.agent", true},
		{"com.apple.ocspd", true},
		{"com.apple.coreservices.launchservicesd", true},
		{"com.apple.coreservices.appleevents", true},
		// Logging, preferences and notifications keep ordinary tools working.
		{"com.apple.system.logger", false},
		{"com.apple.logd", false},
		{"com.apple.cfprefsd.daemon", false},
		{"com.apple.cfprefsd.agent", false},
		{"com.apple.system.notification_center", false},
		{"com.apple.system.opendirectoryd.libinfo", false},
		{"com.apple.secdx", false},
	}
	names := filterValues(rules, "deny", "mach-lookup", "global-name")
	prefixes := filterValues(rules, "deny", "mach-lookup", "global-name-prefix")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := slices.Contains(names, tt.name) ||
				slices.ContainsFunc(prefixes, func(p string) bool { return strings.HasPrefix(tt.name, p) })
			if got != tt.want {
				t.Errorf("mach-lookup %s denied = %v, want %v", tt.name, got, tt.want)
			}
		})
	}
}

func TestSeatbeltDeterministic(t *testing.T) {
	hidden := []string{"/Users/me/.ssh", "/Users/me/.aws", "/tmp/s", `/Users/me/q"b\`, "/Users/me/.kube", "/Users/me/.ssh"}
	want, err := SeatbeltProfile(SeatbeltParams{Port: 9471, Home: "/Users/me", Hidden: hidden})
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewSource(1))
	for i := range 20 {
		shuffled := slices.Clone(hidden)
		rng.Shuffle(len(shuffled), func(a, b int) { shuffled[a], shuffled[b] = shuffled[b], shuffled[a] })
		if i%2 == 1 {
			shuffled = append(shuffled, shuffled[0]) // a repeat changes nothing either
		}
		got, err := SeatbeltProfile(SeatbeltParams{Port: 9471, Home: "/Users/me", Hidden: shuffled})
		if err != nil || got != want {
			t.Fatalf("Hidden %q gave different text (err %v):\n%s\nwant:\n%s", shuffled, err, got, want)
		}
	}
}

// The caller's slice is not reordered: SeatbeltProfile sorts a copy.
func TestSeatbeltLeavesHiddenAlone(t *testing.T) {
	hidden := []string{"/b", "/a"}
	if _, err := SeatbeltProfile(SeatbeltParams{Port: 9471, Home: "/Users/me", Hidden: hidden}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(hidden, []string{"/b", "/a"}) {
		t.Errorf("Hidden reordered to %q", hidden)
	}
}

func TestSeatbeltErrors(t *testing.T) {
	long := "/" + strings.Repeat("a", 1023)
	tests := []struct {
		name string
		p    SeatbeltParams
		want string
	}{
		{"port zero", SeatbeltParams{Port: 0, Home: "/Users/me"}, "port 0 is outside 1..65535"},
		{"port negative", SeatbeltParams{Port: -1, Home: "/Users/me"}, "port -1 is outside"},
		{"port too high", SeatbeltParams{Port: 65536, Home: "/Users/me"}, "port 65536 is outside"},
		{"home empty", SeatbeltParams{Port: 9471}, "home path is empty"},
		{"home relative", SeatbeltParams{Port: 9471, Home: "Users/me"}, `home path "Users/me" is not absolute`},
		{"hidden empty", SeatbeltParams{Port: 9471, Home: "/Users/me", Hidden: []string{"/a", ""}}, "hidden path is empty"},
		{"hidden relative", SeatbeltParams{Port: 9471, Home: "/Users/me", Hidden: []string{".ssh"}}, `hidden path ".ssh" is not absolute`},
		{"hidden tilde", SeatbeltParams{Port: 9471, Home: "/Users/me", Hidden: []string{"~/.ssh"}}, "is not absolute"},
		{"hidden NUL", SeatbeltParams{Port: 9471, Home: "/Users/me", Hidden: []string{"/a\x00b"}}, "has a control character"},
		{"hidden newline", SeatbeltParams{Port: 9471, Home: "/Users/me", Hidden: []string{"/a\n(allow default)"}}, "has a control character"},
		{"hidden tab", SeatbeltParams{Port: 9471, Home: "/Users/me", Hidden: []string{"/a\tb"}}, "has a control character"},
		{"hidden DEL", SeatbeltParams{Port: 9471, Home: "/Users/me", Hidden: []string{"/a\x7fb"}}, "has a control character"},
		{"hidden C1 control", SeatbeltParams{Port: 9471, Home: "/Users/me", Hidden: []string{"/a\u0085b"}}, "has a control character"},
		{"home control", SeatbeltParams{Port: 9471, Home: "/Users/me\r"}, "home path"},
		{"hidden invalid UTF-8", SeatbeltParams{Port: 9471, Home: "/Users/me", Hidden: []string{"/a\xffb"}}, "not valid UTF-8"},
		{"hidden too long", SeatbeltParams{Port: 9471, Home: "/Users/me", Hidden: []string{long}}, "1024 bytes, longer than macOS can name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := SeatbeltProfile(tt.p)
			if err == nil {
				t.Fatalf("SeatbeltProfile = nil error, want %q; profile:\n%s", tt.want, got)
			}
			if got != "" {
				t.Errorf("profile returned with the error: %q", got)
			}
			if msg := err.Error(); !strings.HasPrefix(msg, "seatbelt profile: ") || !strings.Contains(msg, tt.want) {
				t.Errorf("error = %q, want it to start with \"seatbelt profile: \" and contain %q", msg, tt.want)
			}
		})
	}
}

func countOf(s []string, v string) int {
	n := 0
	for _, x := range s {
		if x == v {
			n++
		}
	}
	return n
}
