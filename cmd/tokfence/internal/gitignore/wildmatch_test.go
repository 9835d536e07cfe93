package gitignore

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// wildCases are wildmatch cases with WM_PATHNAME (most from git's
// t3070-wildmatch.sh). Every text is a valid relative path, so that
// TestWildCasesAgainstGit can ask git about each one.
var wildCases = []struct {
	pattern, text string
	want          bool
}{
	{"foo", "foo", true},
	{"foo", "bar", false},
	{"???", "foo", true},
	{"??", "foo", false},
	{"*", "foo", true},
	{"f*", "foo", true},
	{"*f", "foo", false},
	{"*foo*", "foo", true},
	{"*ob*a*r*", "foobar", true},
	{"*ab", "aaaaaaabababab", true},
	{`foo\*`, "foo*", true},
	{`foo\*bar`, "foobar", false},
	{`f\\oo`, `f\oo`, true},
	{"*[al]?", "ball", true},
	{"[ten]", "ten", false},
	{"**[!te]", "ten", true},
	{"**[!ten]", "ten", false},
	{"t[a-g]n", "ten", true},
	{"t[!a-g]n", "ten", false},
	{"t[!a-g]n", "ton", true},
	{"t[^a-g]n", "ton", true},
	{"a[]]b", "a]b", true},
	{"a[]-]b", "a-b", true},
	{"a[]-]b", "a]b", true},
	{"a[]-]b", "aab", false},
	{"a[]a-]b", "aab", true},
	{"]", "]", true},
	{"foo*bar", "foo/baz/bar", false},
	{"foo**bar", "foo/baz/bar", false},
	{"foo**bar", "foobazbar", true},
	{"foo/**/bar", "foo/baz/bar", true},
	{"foo/**/**/bar", "foo/baz/bar", true},
	{"foo/**/bar", "foo/b/a/z/bar", true},
	{"foo/**/**/bar", "foo/b/a/z/bar", true},
	{"foo/**/bar", "foo/bar", true},
	{"foo/**/**/bar", "foo/bar", true},
	{"foo?bar", "foo/bar", false},
	{"foo[/]bar", "foo/bar", false},
	{"foo[^a-z]bar", "foo/bar", false},
	{"f[^eiu][^eiu][^eiu][^eiu][^eiu]r", "foo-bar", true},
	{"**/foo", "foo", true},
	{"**/foo", "XXX/foo", true},
	{"**/foo", "bar/baz/foo", true},
	{"*/foo", "bar/baz/foo", false},
	{"**/bar*", "foo/bar/baz", false},
	{"**/bar/*", "deep/foo/bar/baz", true},
	{"**/bar/*", "deep/foo/bar", false},
	{"**/bar**", "foo/bar/baz", false},
	{"*/bar/**", "deep/foo/bar/baz/x", false},
	{"**/bar/*/*", "deep/foo/bar/baz/x", true},
	{"*/bar/**", "foo/bar/baz/x", true},
	{"foo/**", "foo/a", true},
	{"foo/**", "foo/a/b", true},
	{"foo/**", "foo", false},
	{"a/**/b", "a/b", true},
	{"a/**/b", "a/x/y/b", true},
	{"a/**b", "a/x/b", false},
	{"**", "a/b/c", true},
	{"*", "a/b", false},
	{"a*", "a/b", false},
	{"a*/b", "axx/b", true},
	{"a*/b", "axx/c/b", false},
	{"[[:alpha:]][[:digit:]][[:upper:]]", "a1B", true},
	{"[[:digit:][:upper:][:space:]]", "a", false},
	{"[[:digit:][:upper:][:space:]]", "A", true},
	{"[[:digit:][:upper:][:space:]]", "1", true},
	{"[[:digit:][:upper:][:spaci:]]", "1", false},
	{"[[:space:]]", " ", true},
	{"[[:xdigit:]]", "f", true},
	{"[[:xdigit:]]", "D", true},
	{"[[:xdigit:]]", "g", false},
	{"[[:punct:]]", "!", true},
	{"[[:punct:]]", "a", false},
	{"[[:alnum:][:cntrl:]]x", "7x", true},
	{"[a-c[:digit:]x-z]", "5", true},
	{"[a-c[:digit:]x-z]", "b", true},
	{"[a-c[:digit:]x-z]", "y", true},
	{"[a-c[:digit:]x-z]", "q", false},
	{"[[:al]", "[", true}, // no ":]": '[', ':', 'a' and 'l' are in the set
	{"[[:al]", "b", false},
	{"[[:al]x", "lx", true},
	{"[[:]x", ":x", true},
	{`[\-_]`, "-", true},
	{`[\-_]`, "_", true},
	{`[\-_]`, "a", false},
	{`[\]]`, "]", true},
	{`[\]]`, `\`, false},
	{"[!]-]", "]", false},
	{"[!]-]", "a", true},
	{"a[c-c]rt", "acrt", true},
	{"a[c-c]st", "acrt", false},
	{"[a-", "a", false},
	{"[", "[", false},
	{`\`, `\`, false},
	{`a\`, "a", false},
	{"[a-z]x", "-x", false},
	{"[z-a]x", "mx", false},
	{"-*-*-*-*-*-*-12-*-*-*-m-*-*-*", "-adobe-courier-bold-o-normal--12-120-75-75-m-70-iso8859-1", true},
	{"-*-*-*-*-*-*-12-*-*-*-m-*-*-*", "-adobe-courier-bold-o-normal--12-120-75-75-X-70-iso8859-1", false},
	{"**/*a*b*g*n*t", "abcd/abcdefg/abcdefghijk/abcdefghijklmnop.txt", true},
	{"**/*a*b*g*n*t", "abcd/abcdefg/abcdefghijk/abcdefghijklmnop.txtz", false},
	{"*/*/*", "foo/bb/aa/rr", false},
	{"**/**/**", "foo/bb/aa/rr", true},
	{"*X*i", "abcXdefXghi", true},
	{"*/*X*/*/*i", "ab/cXd/efXg/hi", true},
	{"**/*X*/**/*i", "ab/cXd/efXg/hi", true},
	{"*a*a*a*a*a*a*a*a*a*a*a*a*b", strings.Repeat("a", 60), false},
	{"**/*a*a*a*a*a*a*a*a*a*a*a*b", "a/a/a/a/" + strings.Repeat("a", 60), false},
	{"**/**/**/**/**/**/**/**/x", "a/b/c/d/e/f/g/h/i/j/k/y", false},
	{"**/a*[b]", "x/a/c/ab", true}, // the star stops at a '/', the double star goes on
	{"x/**/a*[b]", "x/a/c/ab", true},
	{"**/a*[b]", "a/c/ac", false},
	{"*a*a*a0", strings.Repeat("a", 30) + "1", false},
	{"a/*a*a*0", "a/" + strings.Repeat("a", 30) + "/0", false},
}

func TestWildmatch(t *testing.T) {
	for _, c := range wildCases {
		if got := wildmatch(c.pattern, c.text, true); got != c.want {
			t.Errorf("wildmatch(%q, %q) = %v, want %v", c.pattern, c.text, got, c.want)
		}
	}
}

// TestWildmatchStaysPolynomial matches patterns that take git itself
// seconds to hours (7 stars against 61 bytes: 4.6 s for git 2.39 here):
// the star that runs out of text looking for the literal after it aborts
// every later try. Were the work exponential, this test would not end.
func TestWildmatchStaysPolynomial(t *testing.T) {
	long := strings.Repeat("a", 200)
	for _, c := range []struct{ pattern, text string }{
		{strings.Repeat("*a", 20) + "0", long + "1"},
		{strings.Repeat("*a", 20) + "0", long},
		{"**/" + strings.Repeat("*a", 20) + "0", "x/y/" + long + "/z"},
		{strings.Repeat("**/a*", 10) + "0", strings.Repeat("a/", 50) + "1"},
		{strings.Repeat("a*", 20) + "[0]", long + "1"},
	} {
		if wildmatch(c.pattern, c.text, true) {
			t.Errorf("wildmatch(%q, %q) = true, want false", c.pattern, c.text)
		}
	}
}

// ignoredWithParents reports whether m ignores base/rel or a directory
// between base and it: what git check-ignore answers for a path whose
// nearest ignore file is base's.
func ignoredWithParents(m *Matcher, base, rel string) bool {
	elems := strings.Split(rel, "/")
	for i := range elems {
		if m.Ignored(base+"/"+strings.Join(elems[:i+1], "/"), i < len(elems)-1) {
			return true
		}
	}
	return false
}

// gitEnv runs git cut off from the user's and the system's config, so
// that no global excludes file takes part.
func gitEnv(t *testing.T) []string {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		if os.Getenv("TOKFENCE_REQUIRE_KEYRING") == "1" { // make test: git is what the oracle is
			t.Fatal("no git on PATH to check the matcher against")
		}
		t.Skip("no git on PATH to check against")
	}
	home := t.TempDir()
	return append(os.Environ(), "HOME="+home, "XDG_CONFIG_HOME="+home, "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null")
}

func git(t *testing.T, env []string, dir, stdin string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir, cmd.Env, cmd.Stdin = dir, env, strings.NewReader(stdin)
	out, err := cmd.Output()
	if ee, ok := err.(*exec.ExitError); err != nil && !(ok && ee.ExitCode() == 1) {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, ee.Stderr)
	}
	return string(out)
}

// TestWildCasesAgainstGit asks git check-ignore about every case, as an
// anchored pattern ("/" + pattern, matched against the path) and, for a
// pattern without a slash, as a name matched at any depth, and holds the
// Matcher's answer to git's.
func TestWildCasesAgainstGit(t *testing.T) {
	env := gitEnv(t)
	repo := t.TempDir()
	git(t, env, repo, "", "init", "-q")
	type query struct {
		rel, line string
		want      bool
	}
	var qs []query
	for i, c := range wildCases {
		lines := []string{"/" + c.pattern}
		if !strings.Contains(c.pattern, "/") {
			lines = append(lines, c.pattern)
		}
		for j, line := range lines {
			dir := fmt.Sprintf("c%03d%c", i, 'a'+j)
			if err := os.MkdirAll(filepath.Join(repo, dir, filepath.Dir(c.text)), 0o755); err != nil {
				t.Fatal(err)
			}
			must(t, os.WriteFile(filepath.Join(repo, dir, c.text), nil, 0o644))
			must(t, os.WriteFile(filepath.Join(repo, dir, ".gitignore"), []byte(line+"\n"), 0o644))
			var m Matcher
			m.Push(Parse(dir, []byte(line+"\n")))
			qs = append(qs, query{rel: dir + "/" + c.text, line: line, want: ignoredWithParents(&m, dir, c.text)})
		}
	}
	var in strings.Builder
	for _, q := range qs {
		in.WriteString(q.rel + "\x00")
	}
	ignored := map[string]bool{}
	for _, p := range strings.Split(git(t, env, repo, in.String(), "check-ignore", "--no-index", "--stdin", "-z"), "\x00") {
		ignored[p] = true
	}
	for _, q := range qs {
		if q.want != ignored[q.rel] {
			t.Errorf("pattern %q, path %q: Matcher says ignored = %v, git check-ignore %v", q.line, q.rel, q.want, ignored[q.rel])
		}
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// FuzzWildmatch feeds wildmatch any pattern and text (it reads patterns
// from the .gitignore files of whatever tree is scanned): it must not
// panic, and a text with every special byte quoted matches itself and
// nothing else.
func FuzzWildmatch(f *testing.F) {
	for _, c := range wildCases {
		f.Add(c.pattern, c.text)
	}
	f.Fuzz(func(t *testing.T, pattern, text string) {
		if len(pattern) > 256 || len(text) > 256 {
			return // longer inputs only slow the fuzzer; the work is polynomial
		}
		wildmatch(pattern, text, true)
		wildmatch(pattern, text, false)
		Parse("", []byte(pattern)).match(text, false)
		var q strings.Builder
		for i := 0; i < len(pattern); i++ {
			if isGlobSpecial(pattern[i]) {
				q.WriteByte('\\')
			}
			q.WriteByte(pattern[i])
		}
		if !wildmatch(q.String(), pattern, true) {
			t.Fatalf("wildmatch(%q, %q) = false: a quoted text must match itself", q.String(), pattern)
		}
		if pattern != text && wildmatch(q.String(), text, true) {
			t.Fatalf("wildmatch(%q, %q) = true: a quoted text matches only itself", q.String(), text)
		}
	})
}
