package keystore

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"
)

// IndexStamp names one version of the index file. Every write the index
// makes replaces the file by rename, so a new version has a new inode
// even when its size and mtime match the old one's.
type IndexStamp struct {
	mod  time.Time
	size int64
	ino  uint64
	ok   bool // the file exists
}

// Stamp returns the stamp of the index file as it is now.
func (x *Index) Stamp() IndexStamp {
	fi, err := os.Stat(x.path)
	if err != nil {
		return IndexStamp{}
	}
	st := IndexStamp{mod: fi.ModTime(), size: fi.Size(), ok: true}
	if sys, ok := fi.Sys().(*syscall.Stat_t); ok {
		st.ino = uint64(sys.Ino)
	}
	return st
}

// Watch is the index's change signal across processes: it calls changed,
// from a goroutine of its own, after each change to the index file (a key
// set or removed by any process: `tokfence key set` in another shell),
// until ctx is done; done is closed when it has stopped. It returns once
// the watch is in place, or why it cannot be (the directory is missing,
// or the system is out of inotify watches), so that a daemon never serves
// keys it cannot see change.
func (x *Index) Watch(ctx context.Context, changed func()) (done <-chan struct{}, err error) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("watch the key index: %w", err)
	}
	dir, name := filepath.Dir(x.path), filepath.Base(x.path)
	// The directory, not the file: the index is replaced by rename, which
	// a watch on the file itself would lose.
	if err := w.Add(dir); err != nil {
		w.Close()
		return nil, fmt.Errorf("watch the key index in %s: %w", dir, err)
	}
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		defer w.Close()
		for {
			select {
			case <-ctx.Done():
				return
			case ev, ok := <-w.Events:
				if !ok {
					return
				}
				if filepath.Base(ev.Name) == name {
					changed()
				}
			case _, ok := <-w.Errors:
				if !ok {
					return
				}
				changed() // an overflow may have lost an event: look again
			}
		}
	}()
	return stopped, nil
}
