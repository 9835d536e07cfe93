package daemon

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/tokfence/tokfence/daemon/api"
	"github.com/tokfence/tokfence/daemon/audit"
	"github.com/tokfence/tokfence/keystore"
	"github.com/tokfence/tokfence/sensor"
)

// keyCache holds provider keys read from the keychain. `tokfence key set`
// and `key rm` rewrite the key index; a new version of the index file
// (keystore.IndexStamp) drops the cache, reloads the sensors' copy of the
// keys and audits the change, so a rotated key is used (and watched for)
// without a restart and without a keychain round trip per request. The
// CLI tells a running daemon at once (POST /v1/keys/reload), and the
// index's own change signal (keystore.Index.Watch) marks the cache stale
// whoever wrote it; requests pay neither a stat nor a poll.
type keyCache struct {
	mu      sync.Mutex
	stamp   keystore.IndexStamp
	keys    map[string]keystore.Secret
	stale   bool                 // the index changed since it was last looked at
	refresh sync.Mutex           // one index refresh at a time
	seen    map[string]time.Time // provider -> index "updated", as last audited
}

// markKeysStale is the key index's change signal: the next request looks
// at the index again.
func (d *Daemon) markKeysStale() {
	d.keyCache.mu.Lock()
	d.keyCache.stale = true
	d.keyCache.mu.Unlock()
}

// providerKey returns the key for provider, from the cache when the index
// has not changed since it was filled.
func (d *Daemon) providerKey(ctx context.Context, provider string) (keystore.Secret, error) {
	c := &d.keyCache
	c.mu.Lock()
	due := c.keys == nil || c.stale
	c.mu.Unlock()
	if due {
		d.checkKeyIndex(ctx)
	}
	c.mu.Lock()
	k, ok := c.keys[provider]
	st := c.stamp
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
	if c.stamp == st && c.keys != nil {
		c.keys[provider] = k
	}
	c.mu.Unlock()
	return k, nil
}

// checkKeyIndex looks at the key index now: if it changed since the cache
// was filled, the cache is dropped and the keys reloaded (see refreshKeys).
func (d *Daemon) checkKeyIndex(ctx context.Context) {
	st := d.keys.Index().Stamp()
	c := &d.keyCache
	c.mu.Lock()
	c.stale = false
	changed := st != c.stamp || c.keys == nil
	if changed {
		c.keys, c.stamp = map[string]keystore.Secret{}, st
	}
	c.mu.Unlock()
	if changed {
		d.refreshKeys(ctx)
	}
}

// keyProviders returns the providers the key index listed at its last look.
func (d *Daemon) keyProviders() []string {
	c := &d.keyCache
	c.refresh.Lock()
	defer c.refresh.Unlock()
	out := make([]string, 0, len(c.seen))
	for p := range c.seen {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

// handleKeysReload makes the daemon look at the key index now: `tokfence
// key set` and `key rm` call it so that the next request uses the change.
func (d *Daemon) handleKeysReload(w http.ResponseWriter, r *http.Request) {
	d.checkKeyIndex(r.Context())
	writeJSON(w, http.StatusOK, api.KeysReloaded{Providers: d.keyProviders()})
}

// refreshKeys reloads the sensors' keys and audits what changed in the
// index since the last look: key_set for a new or rotated key (named by
// its keyed fingerprint), key_remove for a removed one.
func (d *Daemon) refreshKeys(ctx context.Context) {
	c := &d.keyCache
	c.refresh.Lock()
	defer c.refresh.Unlock()
	entries, _, err := d.keys.Index().List()
	if err != nil {
		d.log.Error("read key index", "err", err)
		return
	}
	now := map[string]time.Time{}
	for _, e := range entries {
		now[e.Provider] = e.Updated
		if prev, ok := c.seen[e.Provider]; c.seen != nil && (!ok || !prev.Equal(e.Updated)) {
			rec := audit.Record{Event: audit.EventKeySet, Provider: e.Provider}
			if k, err := d.keys.ProviderKey(ctx, e.Provider); err == nil {
				rec.Fingerprint = sensor.Fingerprint(d.fpKey, k.Reveal())
			}
			d.appendAudit(rec)
			d.log.Info("provider key changed", "provider", e.Provider, "fingerprint", rec.Fingerprint)
		}
	}
	for p := range c.seen {
		if _, ok := now[p]; !ok {
			d.appendAudit(audit.Record{Event: audit.EventKeyRemove, Provider: p})
			d.log.Info("provider key removed", "provider", p)
		}
	}
	c.seen = now
	if err := d.loadKeySecrets(ctx); err != nil {
		d.log.Error("reload keys for the sensors", "err", err)
	}
}

// handleAuditHash fingerprints a value with the trail's key, so that the
// user can search the trail for a secret without the trail holding it
// (Vault's sys/audit-hash). The value is neither logged nor kept.
func (d *Daemon) handleAuditHash(w http.ResponseWriter, r *http.Request) {
	var req api.AuditHashRequest
	if !decodeJSON(w, r, &req) {
		return
	}
	if req.Value == "" || len(req.Value) > keystore.MaxSecretLen {
		writeError(w, http.StatusBadRequest, errInvalid, fmt.Sprintf("value must be 1 to %d bytes", keystore.MaxSecretLen))
		return
	}
	writeJSON(w, http.StatusOK, api.AuditHash{Fingerprint: sensor.Fingerprint(d.fpKey, []byte(req.Value))})
}
