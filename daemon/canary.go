package daemon

import (
	"crypto/rand"
	"math/big"
	"strings"
)

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

func randomString(alphabet string, n int) (string, error) {
	var b strings.Builder
	max := big.NewInt(int64(len(alphabet)))
	for i := 0; i < n; i++ {
		k, err := rand.Int(rand.Reader, max)
		if err != nil {
			return "", err
		}
		b.WriteByte(alphabet[k.Int64()])
	}
	return b.String(), nil
}

// newCanary returns a decoy credential for the env var name: formatted
// like the real thing (so a thief takes it), random (so a sighting names
// exactly one session), and useless anywhere but as a tripwire.
func newCanary(name string) (string, error) {
	n := strings.ToUpper(name)
	switch {
	case strings.Contains(n, "ANTHROPIC"):
		s, err := randomString(base62+"-_", 93)
		return "sk-ant-admin01-" + s, err
	case strings.Contains(n, "GITHUB"):
		s, err := randomString(base62, 36)
		return "ghp_" + s, err
	case strings.Contains(n, "STRIPE"):
		s, err := randomString(base62, 99)
		return "sk_live_" + s, err
	case strings.Contains(n, "AWS"):
		return randomString(base62+"/+", 40)
	}
	s, err := randomString(base62, 64)
	return "sk-admin-" + s, err
}

// canaryEnv builds the session's decoy credentials, one per configured
// env name, shaped like the credential that name suggests.
func canaryEnv(names []string) (map[string]string, error) {
	out := make(map[string]string, len(names))
	for _, n := range names {
		v, err := newCanary(n)
		if err != nil {
			return nil, err
		}
		out[n] = v
	}
	return out, nil
}
