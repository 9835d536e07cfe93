package pathglob

import (
	"path"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"
)

// refValid is Check written the slow, obvious way.
func refValid(pattern string) bool {
	if len(pattern) < 1 || len(pattern) > MaxLen || strings.Contains(pattern, "**") {
		return false
	}
	for _, c := range []byte(pattern) {
		if c < '!' || c > '~' || strings.ContainsRune(`?[]{}\`, rune(c)) {
			return false
		}
	}
	return true
}

// refMatch is Match as a regular expression: each literal run quoted, each
// '*' a ".*" that also crosses newlines, anchored at both ends.
func refMatch(t *testing.T, pattern, s string) bool {
	parts := strings.Split(pattern, "*")
	for i, p := range parts {
		parts[i] = regexp.QuoteMeta(p)
	}
	re, err := regexp.Compile(`(?s)^` + strings.Join(parts, ".*") + `$`)
	if err != nil {
		t.Fatalf("reference regexp for %q: %v", pattern, err)
	}
	return re.MatchString(s)
}

// FuzzGlob checks the glob language against simple references: Check
// against refValid, Match against a regexp built with QuoteMeta and ".*",
// and ParseEndpoint for panics and a String round trip.
func FuzzGlob(f *testing.F) {
	for _, seed := range [][2]string{
		{"gpt-4o*", "gpt-4o-mini"}, {"*/models", "/v1/models"}, {"a*b*c", "aXbYbZc"}, {"*", ""},
		{"", ""}, {"**", "a"}, {"[a]", "a"}, {"a\\*", "a*"}, {"*.*", "a\nb.c"}, {"POST /v1/chat/*", "/v1/chat/x"},
		{"GET */models", "/v1beta/models"}, {"* *", "x"}, {"é*", "é\xff"}, {"*\x00", "\x00"},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, pattern, s string) {
		if err := Check(pattern); (err == nil) != refValid(pattern) {
			t.Fatalf("Check(%q) = %v, want valid=%v", pattern, err, refValid(pattern))
		}
		if e, err := ParseEndpoint(pattern); err == nil {
			if back, err := ParseEndpoint(e.String()); err != nil || back != e {
				t.Fatalf("ParseEndpoint(%q) = %+v, but its String parses to %+v, %v", pattern, e, back, err)
			}
			if !refValid(e.Glob) {
				t.Fatalf("ParseEndpoint(%q) accepted the invalid glob %q", pattern, e.Glob)
			}
		}
		if len(pattern) > 2*MaxLen || len(s) > 1024 || !utf8.ValidString(pattern) {
			// The regexp cannot compile invalid UTF-8 (Check refuses it
			// anyway), and on long inputs it is what would make this slow.
			return
		}
		if got, want := Match(pattern, s), refMatch(t, pattern, s); got != want {
			t.Fatalf("Match(%q, %q) = %v, want %v (regexp reference)", pattern, s, got, want)
		}
	})
}

// refClean is CheckPath written another way: path.Clean must leave the
// path alone (but for one trailing '/'), and a list of forbidden bytes and
// encodings must not occur.
func refClean(p string) bool {
	if !strings.HasPrefix(p, "/") || strings.Contains(p, "//") {
		return false
	}
	if c := path.Clean(p); c != p && c+"/" != p {
		return false
	}
	for _, c := range []byte(p) {
		if c < '!' || c == 0x7f || strings.ContainsRune(`\;?#`, rune(c)) {
			return false
		}
	}
	lower := strings.ToLower(p)
	for _, enc := range []string{"%2f", "%5c", "%2e", "%3b", "%00", "%25"} {
		if strings.Contains(lower, enc) {
			return false
		}
	}
	return true
}

// FuzzCheckPath checks CheckPath against refClean.
func FuzzCheckPath(f *testing.F) {
	for _, s := range []string{"/", "/v1/chat/completions", "/v1/models/", "/v1//x", "/v1/./x", "/v1/../x", "/.", "/..",
		"/...", "/a.", "/.a", "v1", "", "//", "/a\\b", "/a;b", "/a?b", "/a#b", "/a b", "/a%2Fb", "/a%5c", "/a%2E", "/a%3b", "/a%00", "/a%20",
		"/a%2", "/a%", "/%25", "/a\x00", "/ü"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		if err := CheckPath(p); (err == nil) != refClean(p) {
			t.Fatalf("CheckPath(%q) = %v, want clean=%v", p, err, refClean(p))
		}
	})
}
