package durable

import (
	"os"

	"golang.org/x/sys/unix"
)

// DataSync makes what was written to f durable, without the metadata a
// size change does not need (fdatasync): the cost of an append-only log.
func DataSync(f *os.File) error { return unix.Fdatasync(int(f.Fd())) }
