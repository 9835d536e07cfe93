package policy

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/tokfence/tokfence/policy/tomlfile"
)

// policyWith returns a valid policy whose YELLOW rate tells versions apart.
func policyWith(perMinute int) string {
	return fmt.Sprintf("version = 1\n[limits.yellow]\nper_minute = %d\n", perMinute)
}

const invalidPolicy = "version = 1\n[limits.yellow]\nper_minute = \"fast\"\n"

// reloads records onReload calls.
type reloads struct {
	mu   sync.Mutex
	errs []error
}

func (r *reloads) record(_ *Policy, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, err)
}

func (r *reloads) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.errs)
}

// startWatcher writes content to a fresh file, starts a Watcher on it and
// returns once the watch is live. Run is stopped, and checked to have
// returned, when the test ends.
func startWatcher(t *testing.T, content string) (*Watcher, string, *reloads) {
	t.Helper()
	name := filepath.Join(t.TempDir(), "policy.toml")
	writeFile(t, name, content)
	rec := &reloads{}
	w, err := NewWatcher(name, rec.record)
	if err != nil {
		t.Fatalf("NewWatcher: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run returned %v after cancel, want nil", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("Run did not return after its context was cancelled")
		}
	})
	select {
	case <-w.testOnlyReady:
	case err := <-done:
		t.Fatalf("Run failed before watching: %v", err)
	}
	return w, name, rec
}

func writeFile(t *testing.T, name, content string) {
	t.Helper()
	if err := os.WriteFile(name, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// waitFor polls cond until it holds or ten seconds pass (CI is slow): fsnotify events
// arrive asynchronously, but the test never sleeps to pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func yellowRate(w *Watcher) int { return w.Current().RateLimit("a", Yellow).PerMinute }

func TestWatcherAppliesValidEdit(t *testing.T) {
	w, name, rec := startWatcher(t, policyWith(30))
	writeFile(t, name, policyWith(12))
	waitFor(t, "the edit to apply", func() bool { return yellowRate(w) == 12 })
	if err := w.LastError(); err != nil {
		t.Errorf("LastError() = %v, want nil", err)
	}
	if rec.count() == 0 {
		t.Error("onReload was not called")
	}
}

func TestWatcherKeepsLastGoodPolicy(t *testing.T) {
	w, name, rec := startWatcher(t, policyWith(30))
	good := w.Current()
	writeFile(t, name, invalidPolicy)
	waitFor(t, "the reload error", func() bool { return w.LastError() != nil })
	if w.Current() != good {
		t.Error("an invalid edit replaced the policy")
	}
	var pe *tomlfile.Error
	if err := w.LastError(); !errors.As(err, &pe) || pe.Line != 3 {
		t.Errorf("LastError() = %v, want a policy error at line 3", err)
	}
	rec.mu.Lock()
	gotErr := len(rec.errs) > 0 && rec.errs[len(rec.errs)-1] != nil
	rec.mu.Unlock()
	if !gotErr {
		t.Error("onReload was not told about the error")
	}
	writeFile(t, name, policyWith(5))
	waitFor(t, "the fixed file to apply", func() bool { return yellowRate(w) == 5 })
	if err := w.LastError(); err != nil {
		t.Errorf("LastError() after a fix = %v, want nil", err)
	}
}

func TestWatcherSeesRenameOver(t *testing.T) {
	w, name, _ := startWatcher(t, policyWith(30))
	tmp := filepath.Join(filepath.Dir(name), ".policy.toml.swp")
	writeFile(t, tmp, policyWith(7))
	if err := os.Rename(tmp, name); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the renamed file to apply", func() bool { return yellowRate(w) == 7 })
	// The watch must survive the replacement: a second save is seen too.
	writeFile(t, tmp, policyWith(8))
	if err := os.Rename(tmp, name); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a second rename to apply", func() bool { return yellowRate(w) == 8 })
}

func TestWatcherSeesRemoveAndRecreate(t *testing.T) {
	w, name, _ := startWatcher(t, policyWith(30))
	if err := os.Remove(name); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the missing file to be reported", func() bool {
		return errors.Is(w.LastError(), fs.ErrNotExist)
	})
	if yellowRate(w) != 30 {
		t.Errorf("after remove, YELLOW rate = %d, want the old 30", yellowRate(w))
	}
	writeFile(t, name, policyWith(9))
	waitFor(t, "the recreated file to apply", func() bool { return yellowRate(w) == 9 })
	if err := w.LastError(); err != nil {
		t.Errorf("LastError() = %v, want nil", err)
	}
}

func TestWatcherIgnoresOtherFiles(t *testing.T) {
	w, name, rec := startWatcher(t, policyWith(30))
	writeFile(t, filepath.Join(filepath.Dir(name), "other.toml"), invalidPolicy)
	// Then a real edit: once it has applied, the other file's events have
	// been seen too, and must have caused no reload error.
	writeFile(t, name, policyWith(11))
	waitFor(t, "the edit to apply", func() bool { return yellowRate(w) == 11 })
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for _, err := range rec.errs {
		if err != nil {
			t.Errorf("onReload got %v from an unrelated file", err)
		}
	}
}

func TestNewWatcherRefusesBadFile(t *testing.T) {
	dir := t.TempDir()
	if _, err := NewWatcher(filepath.Join(dir, "missing.toml"), nil); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("NewWatcher(missing) = %v, want fs.ErrNotExist", err)
	}
	bad := filepath.Join(dir, "bad.toml")
	writeFile(t, bad, invalidPolicy)
	if _, err := NewWatcher(bad, nil); err == nil {
		t.Error("NewWatcher(invalid) succeeded, want an error")
	}
}

func TestReloadSameContentIsQuiet(t *testing.T) {
	name := filepath.Join(t.TempDir(), "policy.toml")
	writeFile(t, name, policyWith(30))
	rec := &reloads{}
	w, err := NewWatcher(name, rec.record)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Reload(); err != nil || rec.count() != 0 {
		t.Errorf("Reload() of unchanged file = %v with %d callbacks, want nil and none", err, rec.count())
	}
}
