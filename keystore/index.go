package keystore

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tokfence/tokfence/keystore/durable"
)

// Index records which providers have a key in the keychain, because the
// keychain API cannot list items. It holds names and times only, never
// secret material, in a 0600 JSON file in the state directory. Writes are
// serialised across processes with flock and land atomically by rename.
type Index struct {
	path string
}

// IndexEntry is one provider's line in the index.
type IndexEntry struct {
	Provider string    `json:"provider"`
	Updated  time.Time `json:"updated"`
}

type indexFile struct {
	Generation uint64                `json:"generation"`
	Providers  map[string]IndexEntry `json:"providers"`
}

// NewIndex returns the index kept at path (created on first write).
func NewIndex(path string) *Index { return &Index{path: path} }

// Path returns the index file's path.
func (x *Index) Path() string { return x.path }

// List returns the indexed providers sorted by name, and the index
// generation, which rises on every change so that a running daemon can tell
// that a key was set or removed.
func (x *Index) List() ([]IndexEntry, uint64, error) {
	f, err := x.read()
	if err != nil {
		return nil, 0, err
	}
	out := make([]IndexEntry, 0, len(f.Providers))
	for _, e := range f.Providers {
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Provider < out[j].Provider })
	return out, f.Generation, nil
}

// Add records provider as having a key.
func (x *Index) Add(provider string) error {
	return x.update(func(f *indexFile) {
		f.Providers[provider] = IndexEntry{Provider: provider, Updated: time.Now().UTC()}
	})
}

// Remove forgets provider.
func (x *Index) Remove(provider string) error {
	return x.update(func(f *indexFile) { delete(f.Providers, provider) })
}

func (x *Index) read() (*indexFile, error) {
	f := &indexFile{Providers: map[string]IndexEntry{}}
	b, err := os.ReadFile(x.path)
	if errors.Is(err, fs.ErrNotExist) {
		return f, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read key index: %w", err)
	}
	if err := json.Unmarshal(b, f); err != nil {
		return nil, fmt.Errorf("key index %s is corrupt (it holds no secrets; delete it and re-run `tokfence key set`): %w", x.path, err)
	}
	if f.Providers == nil {
		f.Providers = map[string]IndexEntry{}
	}
	return f, nil
}

func (x *Index) update(fn func(*indexFile)) error {
	if err := os.MkdirAll(filepath.Dir(x.path), 0o700); err != nil {
		return fmt.Errorf("key index dir: %w", err)
	}
	lock, err := os.OpenFile(x.path+".lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return fmt.Errorf("lock key index: %w", err)
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		return fmt.Errorf("lock key index: %w", err)
	}
	f, err := x.read()
	if err != nil {
		return err
	}
	fn(f)
	f.Generation++
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return fmt.Errorf("encode key index: %w", err)
	}
	return durable.WriteFile(x.path, append(b, '\n'), 0o600)
}
