//go:build !linux && !darwin

package fence

import (
	"errors"
	"io"
)

// Supported reports whether this platform can build a fence.
const Supported = false

// Start fails: this platform has no fence.
func Start(io.Reader, io.Writer, io.Writer, int) (*Fence, error) {
	return nil, &Error{Cause: "this platform has no fence", Fix: hintNoFence}
}

// Run fails: this platform has no fence.
func (f *Fence) Run(Spec) error { return errors.New("fence: unsupported platform") }

// MaybeInit does nothing: there is no fence init on this platform.
func MaybeInit() {}
