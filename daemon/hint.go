package daemon

import "fmt"

// hintError is an error with a fix for the user; the CLI prints the hint.
type hintError struct {
	err  error
	hint string
}

func (e *hintError) Error() string { return e.err.Error() }
func (e *hintError) Unwrap() error { return e.err }

// Hint returns the fix.
func (e *hintError) Hint() string { return e.hint }

// WithHint returns err carrying a hint, the fix the CLI prints as
// "tokfence: hint: ...".
func WithHint(err error, hint string) error { return &hintError{err: err, hint: hint} }

func withHintf(err error, format string, args ...any) error {
	return WithHint(err, fmt.Sprintf(format, args...))
}
