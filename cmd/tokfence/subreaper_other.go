//go:build !linux

package main

// becomeSubreaper has no equivalent off Linux.
func becomeSubreaper() error { return nil }
