package daemon

import (
	"context"
	"os"
	"sync"
	"time"

	"github.com/tokfence/tokfence/keystore"
)

// keyCache holds provider keys read from the keychain. `tokfence key set`
// and `key rm` rewrite the key index, so a change of the index file's size
// or mtime drops the cache: a rotated key is used from the next request on,
// without a restart and without a keychain round trip per request.
type keyCache struct {
	mu    sync.Mutex
	stamp indexStamp
	keys  map[string]keystore.Secret
}

type indexStamp struct {
	mod  time.Time
	size int64
	ok   bool
}

func statIndex(path string) indexStamp {
	fi, err := os.Stat(path)
	if err != nil {
		return indexStamp{}
	}
	return indexStamp{mod: fi.ModTime(), size: fi.Size(), ok: true}
}

// providerKey returns the key for provider, from the cache when the index
// has not changed since it was filled.
func (d *Daemon) providerKey(ctx context.Context, provider string) (keystore.Secret, error) {
	st := statIndex(d.keys.Index().Path())
	c := &d.keyCache
	c.mu.Lock()
	if st != c.stamp || c.keys == nil {
		c.keys, c.stamp = map[string]keystore.Secret{}, st
	}
	k, ok := c.keys[provider]
	c.mu.Unlock()
	if ok {
		return k, nil
	}
	k, err := d.keys.ProviderKey(ctx, provider)
	if err != nil {
		return keystore.Secret{}, err
	}
	if err := keystore.ValidateKey(k.Reveal()); err != nil {
		return keystore.Secret{}, err
	}
	c.mu.Lock()
	if c.stamp == st {
		c.keys[provider] = k
	}
	c.mu.Unlock()
	return k, nil
}
