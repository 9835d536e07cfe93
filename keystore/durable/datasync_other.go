//go:build !linux

package durable

import "os"

// DataSync makes what was written to f durable (fsync: this platform has
// no fdatasync).
func DataSync(f *os.File) error { return f.Sync() }
