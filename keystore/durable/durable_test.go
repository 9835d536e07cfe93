package durable

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// spyFS is the real file system, recording each step and failing the one
// named in fail (or, for "short-write", writing one byte less than asked).
type spyFS struct {
	fail string
	ops  []string
}

var errInjected = errors.New("injected failure")

func (s *spyFS) step(op string) error {
	s.ops = append(s.ops, op)
	if op == s.fail {
		return errInjected
	}
	return nil
}

func (s *spyFS) createExcl(name string, perm os.FileMode) (file, error) {
	if err := s.step("create"); err != nil {
		return nil, err
	}
	f, err := osFS{}.createExcl(name, perm)
	if err != nil {
		return nil, err
	}
	return &spyFile{f: f, fs: s, kind: "file"}, nil
}

func (s *spyFS) openDir(name string) (file, error) {
	if err := s.step("open-dir"); err != nil {
		return nil, err
	}
	f, err := osFS{}.openDir(name)
	if err != nil {
		return nil, err
	}
	return &spyFile{f: f, fs: s, kind: "dir"}, nil
}

func (s *spyFS) rename(oldpath, newpath string) error {
	if err := s.step("rename"); err != nil {
		return err
	}
	return os.Rename(oldpath, newpath)
}

func (s *spyFS) remove(name string) error {
	s.ops = append(s.ops, "remove")
	return os.Remove(name)
}

type spyFile struct {
	f    file
	fs   *spyFS
	kind string // "file" or "dir"
}

func (f *spyFile) Write(b []byte) (int, error) {
	if err := f.fs.step(f.kind + "-write"); err != nil {
		return 0, err
	}
	if f.fs.fail == "short-write" && len(b) > 0 {
		return f.f.Write(b[:len(b)-1])
	}
	return f.f.Write(b)
}

func (f *spyFile) Chmod(m os.FileMode) error {
	if err := f.fs.step(f.kind + "-chmod"); err != nil {
		return err
	}
	return f.f.Chmod(m)
}

func (f *spyFile) Sync() error {
	if err := f.fs.step(f.kind + "-sync"); err != nil {
		return err
	}
	return f.f.Sync()
}

func (f *spyFile) Close() error {
	err := f.f.Close() // always release the descriptor, then report
	if serr := f.fs.step(f.kind + "-close"); serr != nil {
		return serr
	}
	return err
}

// dirNames returns the names in dir, sorted.
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

func TestWriteFileStepsInOrder(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state.json")
	s := &spyFS{}
	if err := writeFile(s, path, []byte("new"), 0o600); err != nil {
		t.Fatal(err)
	}
	// The directory sync must come after the rename: before it, it makes
	// nothing durable.
	want := []string{"create", "file-chmod", "file-write", "file-sync", "file-close", "rename", "open-dir", "dir-sync", "dir-close"}
	if !slices.Equal(s.ops, want) {
		t.Fatalf("steps = %v, want %v", s.ops, want)
	}
	if got, _ := os.ReadFile(path); string(got) != "new" {
		t.Fatalf("content = %q, want %q", got, "new")
	}
}

func TestWriteFileFailureKeepsOldFile(t *testing.T) {
	for _, step := range []string{"create", "file-chmod", "file-write", "short-write", "file-sync", "file-close", "rename"} {
		t.Run(step, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "state.json")
			if err := os.WriteFile(path, []byte("old"), 0o600); err != nil {
				t.Fatal(err)
			}
			err := writeFile(&spyFS{fail: step}, path, []byte("new content"), 0o600)
			if err == nil {
				t.Fatalf("writeFile with %s failing = nil, want an error", step)
			}
			if step != "short-write" && !errors.Is(err, errInjected) {
				t.Errorf("writeFile error = %v, want it to wrap the failure", err)
			}
			if !strings.Contains(err.Error(), path) || strings.Contains(err.Error(), "new content") {
				t.Errorf("writeFile error = %q, want it to name %s and not the content", err, path)
			}
			if got, _ := os.ReadFile(path); string(got) != "old" {
				t.Errorf("after a failed %s the file holds %q, want the old content", step, got)
			}
			if names := dirNames(t, dir); !slices.Equal(names, []string{"state.json"}) {
				t.Errorf("after a failed %s the directory holds %v, want only state.json (no temp file)", step, names)
			}
		})
	}
}

func TestWriteFileDirSyncFailureIsReported(t *testing.T) {
	for _, step := range []string{"open-dir", "dir-sync", "dir-close"} {
		t.Run(step, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "state.json")
			err := writeFile(&spyFS{fail: step}, path, []byte("new"), 0o600)
			if !errors.Is(err, errInjected) || !strings.Contains(err.Error(), "may not survive a power loss") {
				t.Fatalf("writeFile with %s failing = %v, want the failure, saying the file may not be durable", step, err)
			}
			if got, _ := os.ReadFile(path); string(got) != "new" {
				t.Errorf("content = %q, want the new content in place", got)
			}
			if names := dirNames(t, dir); !slices.Equal(names, []string{"state.json"}) {
				t.Errorf("directory holds %v, want only state.json", names)
			}
		})
	}
}

func TestWriteFilePermIgnoresUmask(t *testing.T) {
	old := syscall.Umask(0o077)
	defer syscall.Umask(old)
	dir := t.TempDir()
	for _, perm := range []os.FileMode{0o600, 0o644, 0o400} {
		path := filepath.Join(dir, fmt.Sprintf("f%o", perm))
		if err := WriteFile(path, []byte("x"), perm); err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(path)
		if err != nil || fi.Mode().Perm() != perm {
			t.Errorf("WriteFile(perm %o): mode = %v, %v; want %v", perm, fi.Mode().Perm(), err, perm)
		}
	}
}

func TestWriteFileReplacesContent(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state.json")
	if err := os.WriteFile(path, bytes.Repeat([]byte("old and longer "), 100), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"short", "", "third"} {
		if err := WriteFile(path, []byte(want), 0o600); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(path)
		if err != nil || string(got) != want {
			t.Fatalf("after WriteFile(%q) the file holds %q, %v", want, got, err)
		}
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode = %v, want the new 0600, not the old file's", fi.Mode().Perm())
	}
}

func TestWriteFileReplacesSymlinkNotItsTarget(t *testing.T) {
	dir, elsewhere := t.TempDir(), t.TempDir()
	target := filepath.Join(elsewhere, "victim")
	if err := os.WriteFile(target, []byte("untouched"), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "state.json")
	if err := os.Symlink(target, path); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(path, []byte("new"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(target); string(got) != "untouched" {
		t.Errorf("symlink target holds %q, want it untouched", got)
	}
	fi, err := os.Lstat(path)
	if err != nil || !fi.Mode().IsRegular() {
		t.Fatalf("Lstat(%s) = %v, %v; want a regular file in place of the link", path, fi, err)
	}
}

func TestCreateExclRefusesWhatIsThere(t *testing.T) {
	dir := t.TempDir()
	plain := filepath.Join(dir, "plain")
	link := filepath.Join(dir, "link")
	if err := os.WriteFile(plain, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(dir, "nowhere"), link); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{plain, link} {
		if f, err := (osFS{}).createExcl(name, 0o600); !errors.Is(err, os.ErrExist) {
			if f != nil {
				f.Close()
			}
			t.Errorf("createExcl(%s) = %v, want ErrExist", name, err)
		}
	}
	if _, err := os.Lstat(filepath.Join(dir, "nowhere")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("createExcl followed the dangling link: %v", err)
	}
}

func TestWriteFileErrors(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "sub", "x"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, path string
	}{
		{"a missing directory", filepath.Join(dir, "missing", "state.json")},
		{"a non-empty directory at the destination", filepath.Join(dir, "sub")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := WriteFile(tt.path, []byte("x"), 0o600); err == nil {
				t.Fatalf("WriteFile(%s) = nil, want an error", tt.path)
			}
			if names := dirNames(t, dir); !slices.Equal(names, []string{"sub"}) {
				t.Errorf("directory holds %v after the failure, want only sub", names)
			}
		})
	}
}

func TestWriteFileRelativePath(t *testing.T) {
	t.Chdir(t.TempDir())
	if err := WriteFile("state.json", []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile("state.json"); string(got) != "x" {
		t.Fatalf("content = %q, want x", got)
	}
}

func TestWriteFileConcurrentWritersNeverTear(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state.json")
	contents := map[string]bool{}
	var wg sync.WaitGroup
	for w := range 8 {
		body := strings.Repeat(fmt.Sprint(w), 4096)
		contents[body] = true
		wg.Go(func() {
			for range 10 {
				if err := WriteFile(path, []byte(body), 0o600); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	got, err := os.ReadFile(path)
	if err != nil || !contents[string(got)] {
		t.Fatalf("after concurrent writes the file holds %d bytes (%v), not one writer's content", len(got), err)
	}
	if names := dirNames(t, dir); !slices.Equal(names, []string{"state.json"}) {
		t.Errorf("directory holds %v, want only state.json", names)
	}
}
