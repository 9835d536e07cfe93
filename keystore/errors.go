package keystore

import (
	"errors"
	"fmt"
	"strings"

	"github.com/zalando/go-keyring"
)

// UnavailableError says why the keychain could not be used and how to fix
// it. It matches ErrUnavailable with errors.Is.
type UnavailableError struct {
	Op     string // what was attempted, e.g. "read provider:openai"
	Reason string // the cause in words
	Err    error  // the backend's error
}

func (e *UnavailableError) Error() string {
	return fmt.Sprintf("keychain unavailable: %s: %s: %v", e.Op, e.Reason, e.Err)
}

// Unwrap returns the backend's error.
func (e *UnavailableError) Unwrap() error { return e.Err }

// Is reports whether target is ErrUnavailable.
func (e *UnavailableError) Is(target error) bool { return target == ErrUnavailable }

// Hint returns the fix for the user, printed by the CLI as "tokfence: hint:".
func (e *UnavailableError) Hint() string { return platformHint }

// classify maps a backend error to the package's sentinels. Errors that are
// neither "not found" nor an input error mean the keychain itself failed, and
// become an UnavailableError with the cause in words.
func classify(op string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, keyring.ErrNotFound), errors.Is(err, ErrNotFound):
		return fmt.Errorf("%s: %w", op, ErrNotFound)
	case errors.Is(err, ErrInvalid):
		return err
	}
	return &UnavailableError{Op: op, Reason: reason(err), Err: err}
}

// reason turns the usual backend failures into words a user can act on.
func reason(err error) string {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "couldn't determine address of session bus"),
		strings.Contains(msg, "unknown address type"),
		strings.Contains(msg, "bus address"),
		strings.Contains(msg, "disabled"),
		strings.Contains(msg, "no such file or directory") && strings.Contains(msg, "bus"):
		return "no D-Bus session bus is reachable"
	case strings.Contains(msg, "org.freedesktop.secrets"),
		strings.Contains(msg, "ServiceUnknown"):
		return "no Secret Service (gnome-keyring, KeePassXC) is running on the session bus"
	case strings.Contains(msg, "Object does not exist"),
		strings.Contains(msg, "collection"):
		return "the Secret Service has no usable login collection"
	case strings.Contains(msg, "prompt"), strings.Contains(msg, "locked"):
		return "the keyring is locked and the unlock prompt was dismissed"
	case errors.Is(err, keyring.ErrSetDataTooBig):
		return "the value is too big for this keychain"
	}
	return "the keychain refused the operation"
}
