// Package hint is an error that carries its fix: the CLI prints the error,
// then "tokfence: hint: FIX". Any error with a Hint() string method is
// printed so (errors.As finds it through wrapping); this is the one the
// daemon and its packages make.
package hint

import "fmt"

type hintError struct {
	err  error
	hint string
}

func (e *hintError) Error() string { return e.err.Error() }
func (e *hintError) Unwrap() error { return e.err }

// Hint returns the fix.
func (e *hintError) Hint() string { return e.hint }

// Wrap returns err carrying fix.
func Wrap(err error, fix string) error { return &hintError{err: err, hint: fix} }

// Wrapf is Wrap with a formatted fix.
func Wrapf(err error, format string, args ...any) error {
	return Wrap(err, fmt.Sprintf(format, args...))
}
