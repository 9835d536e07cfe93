package keystoretest

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// LeakForms returns the spellings of secret a leak could take: raw, base64
// (standard and URL, padded or not, and the stable inner run of the secret
// embedded at each byte alignment of a larger blob), hex in both cases, and
// percent-encoding.
func LeakForms(secret []byte) map[string][]byte {
	forms := map[string][]byte{
		"raw":       secret,
		"hex":       []byte(hex.EncodeToString(secret)),
		"HEX":       []byte(strings.ToUpper(hex.EncodeToString(secret))),
		"url-query": []byte(url.QueryEscape(string(secret))),
		"url-path":  []byte(url.PathEscape(string(secret))),
	}
	for _, enc := range []struct {
		name string
		e    *base64.Encoding
	}{{"base64", base64.RawStdEncoding}, {"base64url", base64.RawURLEncoding}} {
		for align := 0; align < 3; align++ {
			// Prefix `align` bytes; the characters that depend only on
			// the secret start at the next 4-char group boundary.
			blob := append(bytes.Repeat([]byte{0}, align), secret...)
			s := enc.e.EncodeToString(blob)
			skip := 0
			if align > 0 {
				skip = 4
			}
			end := ((align + len(secret)) / 3) * 4
			if end > skip+8 {
				forms[enc.name+"@"+string(rune('0'+align))] = []byte(s[skip:end])
			}
		}
	}
	return forms
}

// AssertNoLeaks walks every root and fails the test if any regular file
// holds any form of any secret. Files under skip (the keyring's own
// encrypted store) are passed over. Only files modified since `since` are
// read when since is non-zero, so /tmp can be walked cheaply.
func AssertNoLeaks(t testing.TB, secrets [][]byte, since time.Time, skip []string, roots ...string) {
	t.Helper()
	for _, root := range roots {
		filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return nil // unreadable or vanished: nothing to read
			}
			for _, s := range skip {
				if p == s || strings.HasPrefix(p, s+string(filepath.Separator)) {
					if d.IsDir() {
						return filepath.SkipDir
					}
					return nil
				}
			}
			if !d.Type().IsRegular() {
				return nil
			}
			if !since.IsZero() {
				if fi, err := d.Info(); err != nil || fi.ModTime().Before(since) {
					return nil
				}
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return nil
			}
			AssertNoLeakIn(t, p, b, secrets)
			return nil
		})
	}
}

// AssertNoLeakIn fails the test if b (named name) holds any form of any
// secret.
func AssertNoLeakIn(t testing.TB, name string, b []byte, secrets [][]byte) {
	t.Helper()
	for i, s := range secrets {
		for form, f := range LeakForms(s) {
			if bytes.Contains(b, f) {
				t.Errorf("%s holds secret #%d in %s form", name, i, form)
			}
		}
	}
}
