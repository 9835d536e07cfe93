package policy

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"
)

// reloadDebounce is how long the file must be quiet before it is re-read.
// Editors save in bursts (truncate, write, chmod, rename; or remove, create,
// write), and reading mid-burst would report a half-written file.
const reloadDebounce = 100 * time.Millisecond

// Watcher keeps the current policy for one file and reloads it when the file
// changes. A reload that fails keeps the last good policy in force and
// records why; a reload only ever swaps in a fully valid Policy.
type Watcher struct {
	path     string // cleaned, absolute
	onReload func(*Policy, error)
	cur      atomic.Pointer[Policy]

	testOnlyReady chan struct{} // closed once Run is watching
	readyOnce     sync.Once

	reloading sync.Mutex // held for a whole reload
	mu        sync.Mutex // guards lastErr
	lastErr   error
}

// NewWatcher loads the policy at path. A missing or invalid file is an
// error, because the daemon must not start on a policy it cannot read.
// onReload, which may be nil, is called from Run after every reload attempt
// with the new policy, or with the kept policy and the error; it is not
// called for this first load, nor when a reload finds the same bytes. It
// runs on Run's goroutine and must not call Reload.
func NewWatcher(path string, onReload func(p *Policy, err error)) (*Watcher, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("watch policy %s: %w", path, err)
	}
	p, err := LoadFile(abs)
	if err != nil {
		return nil, err
	}
	w := &Watcher{path: abs, onReload: onReload, testOnlyReady: make(chan struct{})}
	w.cur.Store(p)
	return w, nil
}

// Current returns the policy in force. It is never nil.
func (w *Watcher) Current() *Policy { return w.cur.Load() }

// LastError returns why the last reload failed, or nil if it succeeded.
func (w *Watcher) LastError() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.lastErr
}

// Reload re-reads the file now, as Run does after a change. It is for a
// SIGHUP or a control-API request; on error the old policy stays in force.
func (w *Watcher) Reload() error {
	w.reloading.Lock() // one reload at a time, so an older read never wins
	defer w.reloading.Unlock()
	old := w.Current()
	p, err := LoadFile(w.path)
	if err != nil {
		err = fmt.Errorf("reload policy, keeping the last good one (sha256 %.12s): %w", old.Digest(), err)
		p = old
	}
	w.mu.Lock()
	unchanged := err == nil && w.lastErr == nil && p.Digest() == old.Digest()
	w.lastErr = err
	w.mu.Unlock()
	if unchanged {
		return nil
	}
	w.cur.Store(p)
	if w.onReload != nil {
		w.onReload(p, err)
	}
	return err
}

// Run watches the file's directory until ctx is done, then returns nil.
// Watching the directory, not the file, is what sees an editor that
// replaces the file (rename over it, or remove and create) rather than
// writing it in place. It returns an error only if the watch cannot be set
// up or fsnotify fails for good. Call Run once; it owns no goroutine but
// its own.
func (w *Watcher) Run(ctx context.Context) error {
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watch policy %s: %w", w.path, err)
	}
	defer fw.Close()
	if err := fw.Add(filepath.Dir(w.path)); err != nil {
		return fmt.Errorf("watch policy %s: %w", w.path, err)
	}
	w.readyOnce.Do(func() { close(w.testOnlyReady) })
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-fw.Events:
			if !ok {
				return fmt.Errorf("watch policy %s: event stream closed", w.path)
			}
			if filepath.Clean(ev.Name) == w.path {
				timer.Reset(reloadDebounce)
			}
		case err, ok := <-fw.Errors:
			if !ok {
				return fmt.Errorf("watch policy %s: error stream closed", w.path)
			}
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				timer.Reset(reloadDebounce) // events were lost; look again
			}
		case <-timer.C:
			w.Reload() // the outcome is in LastError and onReload
		}
	}
}
