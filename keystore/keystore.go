// Package keystore keeps provider API keys and the daemon's internal secrets
// in the OS keychain (Secret Service on Linux, Keychain on macOS) through
// github.com/zalando/go-keyring.
//
// Threat model: the keychain is the only place a key is ever written. When no
// keychain is reachable every operation fails with an UnavailableError that
// names the cause and the fix; there is deliberately no fallback file. Beside
// the keychain the package keeps an index of which providers have a key (the
// keychain API cannot list), and the index never holds secret material.
//
// Invariants: every keychain call has a deadline, because a locked keyring's
// unlock prompt (or a dead D-Bus) can block forever; secret values leave the
// package only as Secret, which redacts itself everywhere but Reveal; error
// messages never contain a secret value.
package keystore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Service is the keychain service name every item is stored under.
const Service = "tokfence"

// DefaultTimeout bounds one keychain call. Secret Service answers in
// milliseconds when unlocked; anything slower is a prompt nobody will answer.
const DefaultTimeout = 5 * time.Second

// MaxSecretLen bounds a stored value. Real provider keys are under 300 bytes;
// the bound stops a pasted file from landing in the keychain.
const MaxSecretLen = 8 << 10

var (
	// ErrNotFound means the keychain has no item under that name.
	ErrNotFound = errors.New("not found in keychain")
	// ErrUnavailable means no keychain could be reached or it did not answer.
	ErrUnavailable = errors.New("keychain unavailable")
	// ErrInvalid means a name or value was refused before reaching the keychain.
	ErrInvalid = errors.New("invalid keystore input")
)

// Backend is the raw keychain: go-keyring in production, Memory in tests.
type Backend interface {
	Get(service, user string) (string, error)
	Set(service, user, password string) error
	Delete(service, user string) error
}

// Store reads and writes tokfence's items in a Backend with deadlines.
type Store struct {
	backend Backend
	timeout time.Duration
	index   *Index
}

// New returns a Store over backend. index may be nil for a store that only
// holds internal secrets; timeout <= 0 selects DefaultTimeout.
func New(backend Backend, index *Index, timeout time.Duration) *Store {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	return &Store{backend: backend, timeout: timeout, index: index}
}

// Index returns the store's provider index (nil if it has none).
func (s *Store) Index() *Index { return s.index }

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,31}$`)

// ValidateName reports an error unless name is a valid provider or item name:
// lowercase letters, digits, '-' and '_', at most 32 bytes.
func ValidateName(name string) error {
	if !nameRE.MatchString(name) {
		return fmt.Errorf("%w: name %q must match %s", ErrInvalid, name, nameRE)
	}
	return nil
}

// ValidateKey reports an error unless v is usable as an HTTP header value:
// non-empty, bounded, free of control characters (a CR/LF would split the
// upstream request's headers), and neither starting nor ending with
// whitespace. HTTP strips a field value's surrounding whitespace (RFC 9110
// §5.5), so such a key is not the key the provider would see; and
// whitespace at either end is how a paste or an editor's newline goes
// wrong (`echo "" | tokfence key set` once replaced a real key with an
// empty one). Whitespace inside a key is allowed: keys are opaque, and a
// field value may hold it. The message never contains the value.
func ValidateKey(v []byte) error {
	if len(v) == 0 {
		return fmt.Errorf("%w: key is empty", ErrInvalid)
	}
	if len(v) > MaxSecretLen {
		return fmt.Errorf("%w: key is %d bytes, longer than %d", ErrInvalid, len(v), MaxSecretLen)
	}
	for i, c := range v {
		if c < 0x20 || c == 0x7f {
			return fmt.Errorf("%w: key has a control character (a line break or tab?) at byte %d", ErrInvalid, i)
		}
	}
	if len(bytes.TrimFunc(v, isEdgeSpace)) == 0 {
		return fmt.Errorf("%w: key is only whitespace", ErrInvalid)
	}
	if r, _ := utf8.DecodeRune(v); isEdgeSpace(r) {
		return fmt.Errorf("%w: key starts with whitespace (%U)", ErrInvalid, r)
	}
	if r, _ := utf8.DecodeLastRune(v); isEdgeSpace(r) {
		return fmt.Errorf("%w: key ends with whitespace (%U)", ErrInvalid, r)
	}
	return nil
}

// isEdgeSpace reports whether r is whitespace that no key starts or ends
// with: Unicode spaces (a no-break space pasted from a web page too) and
// the zero-width characters that editors and pages slip in.
func isEdgeSpace(r rune) bool {
	return unicode.IsSpace(r) || r == '\u200b' || r == '\u2060' || r == '\ufeff'
}

func providerUser(provider string) string { return "provider:" + provider }
func internalUser(name string) string     { return "internal:" + name }

// ProviderKey returns the stored key for provider.
func (s *Store) ProviderKey(ctx context.Context, provider string) (Secret, error) {
	if err := ValidateName(provider); err != nil {
		return Secret{}, err
	}
	return s.get(ctx, providerUser(provider))
}

// SetProviderKey stores key for provider and records the provider in the index.
func (s *Store) SetProviderKey(ctx context.Context, provider string, key Secret) error {
	if err := ValidateName(provider); err != nil {
		return err
	}
	if err := ValidateKey(key.Reveal()); err != nil {
		return err
	}
	if err := s.set(ctx, providerUser(provider), key); err != nil {
		return err
	}
	if s.index != nil {
		return s.index.Add(provider)
	}
	return nil
}

// DeleteProviderKey removes provider's key and its index entry. A key that is
// already gone still clears the index entry and returns ErrNotFound.
func (s *Store) DeleteProviderKey(ctx context.Context, provider string) error {
	if err := ValidateName(provider); err != nil {
		return err
	}
	err := s.del(ctx, providerUser(provider))
	if err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	if s.index != nil {
		if ierr := s.index.Remove(provider); ierr != nil {
			return ierr
		}
	}
	return err
}

// Internal returns the daemon-internal secret name (e.g. "signing-key").
func (s *Store) Internal(ctx context.Context, name string) (Secret, error) {
	return s.get(ctx, internalUser(name))
}

// SetInternal stores the daemon-internal secret name.
func (s *Store) SetInternal(ctx context.Context, name string, v Secret) error {
	if v.IsZero() || v.Len() > MaxSecretLen {
		return fmt.Errorf("%w: internal secret %q has bad length %d", ErrInvalid, name, v.Len())
	}
	return s.set(ctx, internalUser(name), v)
}

// Probe checks that the keychain answers, by looking up an item that need not
// exist. It turns "no keychain" into an error at daemon start rather than at
// the first request.
func (s *Store) Probe(ctx context.Context) error {
	_, err := s.get(ctx, internalUser("probe"))
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	return err
}

func (s *Store) get(ctx context.Context, user string) (Secret, error) {
	var out Secret
	err := s.call(ctx, "read "+user, func() error {
		v, err := s.backend.Get(Service, user)
		if err == nil {
			out = NewSecret([]byte(v))
		}
		return err
	})
	return out, err
}

func (s *Store) set(ctx context.Context, user string, v Secret) error {
	return s.call(ctx, "write "+user, func() error {
		err := s.backend.Set(Service, user, string(v.Reveal()))
		return scrub(err, v)
	})
}

func (s *Store) del(ctx context.Context, user string) error {
	return s.call(ctx, "delete "+user, func() error { return s.backend.Delete(Service, user) })
}

// call runs fn with the store's deadline. On timeout the goroutine running fn
// is left to finish on its own (a keychain call cannot be cancelled); it owns
// nothing but its result channel, which is buffered so it never blocks.
func (s *Store) call(ctx context.Context, op string, fn func() error) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- fn() }()
	select {
	case err := <-done:
		return classify(op, err)
	case <-ctx.Done():
		return &UnavailableError{
			Op:     op,
			Reason: fmt.Sprintf("the keychain did not answer within %s (a locked keyring may be waiting on an unlock prompt)", s.timeout),
			Err:    ctx.Err(),
		}
	}
}

// scrub replaces any copy of the secret inside err's text, in case a backend
// ever echoes the value it was given.
func scrub(err error, v Secret) error {
	if err == nil || v.IsZero() {
		return err
	}
	msg := err.Error()
	if !strings.Contains(msg, string(v.Reveal())) {
		return err
	}
	return errors.New(strings.ReplaceAll(msg, string(v.Reveal()), redacted))
}
