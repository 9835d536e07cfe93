package keystore

import (
	"fmt"
	"log/slog"
)

// redacted is what a Secret prints in every formatting path.
const redacted = "[REDACTED]"

// Secret holds secret bytes that never print themselves. The raw value is
// reachable only through Reveal, so every place that handles key material is
// one grep away.
type Secret struct {
	b []byte
}

// NewSecret returns a Secret holding a copy of b.
func NewSecret(b []byte) Secret {
	return Secret{b: append([]byte(nil), b...)}
}

// Reveal returns the raw secret bytes. Callers must not log, format or
// persist them; the only legitimate consumers are the keychain, the signer
// and the upstream auth header.
func (s Secret) Reveal() []byte { return s.b }

// IsZero reports whether the secret is empty.
func (s Secret) IsZero() bool { return len(s.b) == 0 }

// Len returns the secret's length in bytes.
func (s Secret) Len() int { return len(s.b) }

// String implements fmt.Stringer without revealing the secret.
func (s Secret) String() string { return redacted }

// GoString implements fmt.GoStringer so %#v does not reveal the secret.
func (s Secret) GoString() string { return "keystore.Secret{" + redacted + "}" }

// Format implements fmt.Formatter so that every verb (%s, %v, %x, %q, %d...)
// prints the redaction marker instead of the bytes.
func (s Secret) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		fmt.Fprint(f, s.GoString())
		return
	}
	fmt.Fprint(f, redacted)
}

// LogValue implements slog.LogValuer.
func (s Secret) LogValue() slog.Value { return slog.StringValue(redacted) }

// MarshalJSON implements json.Marshaler without revealing the secret.
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }

// MarshalText implements encoding.TextMarshaler without revealing the secret,
// so TOML, XML and map keys cannot leak it either.
func (s Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// Fingerprint returns a human fingerprint such as "sk-…AbCd": the known key prefix
// (up to the last '-' or '_' within the first 12 bytes) and the last four
// characters. It is what dashboards of the providers show, so it tells two
// keys apart without weakening either. Secrets shorter than 16 bytes show
// only "…" and their length, since four characters of a short secret are too
// large a share of it.
func (s Secret) Fingerprint() string {
	if len(s.b) < 16 {
		return fmt.Sprintf("…(%d bytes)", len(s.b))
	}
	prefix := ""
	for i := 0; i < 12 && i < len(s.b)-8; i++ {
		if s.b[i] == '-' || s.b[i] == '_' {
			prefix = string(s.b[:i+1])
		}
	}
	return prefix + "…" + printable(s.b[len(s.b)-4:])
}

func printable(b []byte) string {
	out := make([]byte, len(b))
	for i, c := range b {
		if c < 0x21 || c > 0x7e {
			c = '?'
		}
		out[i] = c
	}
	return string(out)
}
