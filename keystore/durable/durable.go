// Package durable replaces small state files so that a crash or a power
// loss leaves either the old content or the new, never a torn mix, and so
// that the new content is on disk once WriteFile returns.
//
// Tokfence keeps its state in such files: the revocation list (a kill must
// survive a restart), the live sessions and the key index. WriteFile is the
// one way they are written.
//
// Invariants:
//   - The destination is replaced by rename(2) from a temp file in the same
//     directory, so readers see the old file or the new one.
//   - The temp file is created with O_CREATE|O_EXCL under a random name: it
//     is never a file, or a symlink, that someone placed there in advance.
//   - The file data is fsynced before the rename and the directory after it;
//     without the second fsync the rename itself can be lost on power loss,
//     leaving the old file in place after WriteFile said it was done.
//   - rename replaces a symlink at the destination rather than following
//     it, so nothing is ever written outside the directory.
//   - On every error before the rename the temp file is removed and the old
//     file is untouched.
//   - Errors name the file, never its content.
package durable

import (
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// WriteFile replaces the file at path with data, with permission bits perm
// (exactly; the umask does not apply), durably: when it returns nil the new
// content survives a crash or power loss. On error the old file is still in
// place, unless the error says the new one is in place but not yet durable
// (the directory sync failed after the rename).
func WriteFile(path string, data []byte, perm os.FileMode) error {
	return writeFile(osFS{}, path, data, perm)
}

func writeFile(fsys fileSystem, path string, data []byte, perm os.FileMode) error {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp := filepath.Join(dir, "."+base+"."+rand.Text()+".tmp")
	f, err := fsys.createExcl(tmp, perm)
	if err != nil {
		// Nothing of ours to remove: whatever is at tmp is not our file.
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := fill(f, data, perm); err != nil {
		fsys.remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := fsys.rename(tmp, path); err != nil {
		fsys.remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := syncDir(fsys, dir); err != nil {
		return fmt.Errorf("write %s: the new file is in place but may not survive a power loss: %w", path, err)
	}
	return nil
}

// fill sets f's mode, writes data, syncs and closes f; f is closed
// whatever happens.
func fill(f file, data []byte, perm os.FileMode) error {
	err := f.Chmod(perm)
	if err == nil {
		err = writeAll(f, data)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func writeAll(w io.Writer, data []byte) error {
	n, err := w.Write(data)
	if err == nil && n < len(data) {
		err = io.ErrShortWrite
	}
	return err
}

// syncDir fsyncs the directory dir, making a rename in it durable.
func syncDir(fsys fileSystem, dir string) error {
	d, err := fsys.openDir(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// fileSystem is what writeFile needs of the OS: a seam so that tests can
// fail each step in turn and watch the order of the steps.
type fileSystem interface {
	createExcl(name string, perm os.FileMode) (file, error)
	openDir(name string) (file, error)
	rename(oldpath, newpath string) error
	remove(name string) error
}

type file interface {
	io.Writer
	Chmod(os.FileMode) error
	Sync() error
	Close() error
}

type osFS struct{}

// createExcl creates name, failing if anything (a symlink included) is
// already there.
func (osFS) createExcl(name string, perm os.FileMode) (file, error) {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return nil, err // a nil *os.File in a file interface would not be nil
	}
	return f, nil
}

func (osFS) openDir(name string) (file, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	return f, nil
}

func (osFS) rename(oldpath, newpath string) error { return os.Rename(oldpath, newpath) }
func (osFS) remove(name string) error             { return os.Remove(name) }
