package daemon

import "strings"

// credentialNames are header names, lowercased with '_' folded to '-', that
// carry credentials in some client or server. They are never forwarded.
var credentialNames = map[string]bool{
	"authorization":        true,
	"proxy-authorization":  true,
	"x-api-key":            true,
	"api-key":              true,
	"apikey":               true,
	"x-goog-api-key":       true,
	"anthropic-api-key":    true,
	"openai-api-key":       true,
	"cookie":               true,
	"set-cookie":           true,
	"x-auth-token":         true,
	"x-amz-security-token": true,
}

// normHeader lowercases name and folds '_' to '-': some servers (and CGI
// bridges) treat X_Api_Key as X-Api-Key, so both spellings must be caught.
func normHeader(name string) string {
	return strings.ReplaceAll(strings.ToLower(name), "_", "-")
}

// isCredentialHeader reports whether a header of this name could carry a
// credential: a known name, or a name ending in a credential word. Names
// that merely contain such a word elsewhere (X-Custom-Token-Count) are not
// credentials by name; their values are still scanned.
func isCredentialHeader(name string) bool {
	n := normHeader(name)
	if credentialNames[n] {
		return true
	}
	for _, suf := range []string{"api-key", "apikey", "-key", "-token", "-secret", "-password", "-auth", "-authorization", "-cookie", "-credential", "-credentials", "-session"} {
		if strings.HasSuffix(n, suf) {
			return true
		}
	}
	return false
}
