package daemon

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tokfence/tokfence/keystore/durable"
)

// grantRecord is one persisted grant: enough to find and kill the session
// after a restart. It holds no token.
type grantRecord struct {
	Agent   string    `json:"agent"`
	Expires time.Time `json:"expires"`
	Fence   string    `json:"fence,omitempty"`
}

// grantLine is one line of the grant journal: a grant or renewal (the
// record), a session's end (Ended), or kill --all (Clear).
type grantLine struct {
	SID   string `json:"sid,omitempty"`
	Ended bool   `json:"ended,omitempty"`
	Clear bool   `json:"clear,omitempty"`
	grantRecord
}

// grantStore persists which sessions were granted and not yet killed, so
// that `kill --agent`, `kill SESSION` and `sessions` know about sessions
// that predate a restart. It is a journal: each change is one line
// appended and synced (fdatasync) before the change is made in memory, so
// a grant or a kill costs the same with ten sessions live or ten thousand;
// the journal is rewritten whole, durably, only when it has grown to
// twice the records it holds. A torn last line (a crash mid-append) is
// dropped at open: its change was never acknowledged.
type grantStore struct {
	mu    sync.Mutex
	path  string
	f     *os.File // the journal, open for appending
	lines int      // lines in the journal
	m     map[string]grantRecord
	buf   []byte
}

// compactAt is the fewest lines at which the journal is rewritten.
const compactAt = 1024

// openGrants reads the journal at path (and, once, the whole-file format
// it replaced, legacy) and opens it for appending.
func openGrants(path, legacy string) (*grantStore, error) {
	g := &grantStore{path: path, m: map[string]grantRecord{}}
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := g.readLegacy(legacy); err != nil {
			return nil, err
		}
	case err != nil:
		return nil, fmt.Errorf("read grants: %w", err)
	default:
		if err := g.replay(b); err != nil {
			return nil, err
		}
	}
	if err := g.compact(time.Time{}); err != nil {
		return nil, fmt.Errorf("grants %s: %w", path, err)
	}
	if legacy != "" {
		if err := os.Remove(legacy); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("remove the old grants file %s: %w", legacy, err)
		}
	}
	return g, nil
}

// readLegacy loads the map the store was kept as before the journal.
func (g *grantStore) readLegacy(path string) error {
	if path == "" {
		return nil
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read grants: %w", err)
	}
	if err := json.Unmarshal(b, &g.m); err != nil {
		return fmt.Errorf("grants file %s is corrupt: %w", path, err)
	}
	return nil
}

// replay applies the journal's lines. Only the last line may be torn.
func (g *grantStore) replay(b []byte) error {
	for n := 1; len(b) > 0; n++ {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			return nil // torn by a crash mid-append: never acknowledged
		}
		var l grantLine
		if err := json.Unmarshal(b[:i], &l); err != nil || !l.Clear && !sessionIDRE.MatchString(l.SID) {
			return fmt.Errorf("grants journal %s is corrupt at line %d; move it aside to start over (sessions granted before cannot then be killed by agent or id, only with kill --all)", g.path, n)
		}
		g.apply(l)
		b = b[i+1:]
	}
	return nil
}

func (g *grantStore) apply(l grantLine) {
	switch {
	case l.Clear:
		clear(g.m)
	case l.Ended:
		delete(g.m, l.SID)
	default:
		g.m[l.SID] = l.grantRecord
	}
}

// compact rewrites the journal as the records live at now (all of them,
// for a zero now), durably, and reopens it for appending. g.mu is held or
// g is not yet shared.
func (g *grantStore) compact(now time.Time) error {
	var out bytes.Buffer
	for sid, r := range g.m {
		if !now.IsZero() && r.Expires.Before(now) {
			delete(g.m, sid)
			continue
		}
		b, err := json.Marshal(grantLine{SID: sid, grantRecord: r})
		if err != nil {
			return err
		}
		out.Write(b)
		out.WriteByte('\n')
	}
	if err := durable.WriteFile(g.path, out.Bytes(), 0o600); err != nil {
		return err
	}
	f, err := os.OpenFile(g.path, os.O_WRONLY|os.O_APPEND|unix.O_NOFOLLOW, 0)
	if err != nil {
		return err
	}
	if g.f != nil {
		g.f.Close()
	}
	g.f, g.lines = f, len(g.m)
	return nil
}

// write appends l to the journal and syncs it, then applies it; on error
// the store is as it was (a partly written line is cut off again).
func (g *grantStore) write(l grantLine, now time.Time) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	b, err := json.Marshal(l)
	if err != nil {
		return err
	}
	g.buf = append(append(g.buf[:0], b...), '\n')
	if err := g.appendLine(); err != nil {
		return fmt.Errorf("grants journal %s: %w", filepath.Base(g.path), err)
	}
	g.apply(l)
	g.lines++
	if g.lines >= compactAt && g.lines >= 2*len(g.m) {
		if err := g.compact(now); err != nil {
			// The journal as appended is still whole and correct.
			return fmt.Errorf("compact grants journal: %w", err)
		}
	}
	return nil
}

func (g *grantStore) appendLine() error {
	fi, err := g.f.Stat()
	if err != nil {
		return err
	}
	if _, err := g.f.Write(g.buf); err != nil {
		g.f.Truncate(fi.Size())
		return err
	}
	if err := durable.DataSync(g.f); err != nil {
		g.f.Truncate(fi.Size())
		return err
	}
	return nil
}

func (g *grantStore) get(sid string) (grantRecord, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	r, ok := g.m[sid]
	return r, ok
}

// add records sid (a grant or a renewal).
func (g *grantStore) add(sid string, rec grantRecord, now time.Time) error {
	return g.write(grantLine{SID: sid, grantRecord: rec}, now)
}

// remove drops sid's record (it was killed).
func (g *grantStore) remove(sid string, now time.Time) error {
	return g.write(grantLine{SID: sid, Ended: true}, now)
}

// clear drops every record (kill --all).
func (g *grantStore) clear() error {
	return g.write(grantLine{Clear: true}, time.Time{})
}

// close closes the journal.
func (g *grantStore) close() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.f == nil {
		return nil
	}
	err := g.f.Close()
	g.f = nil
	return err
}

func (g *grantStore) snapshot(now time.Time) map[string]grantRecord {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make(map[string]grantRecord, len(g.m))
	for id, r := range g.m {
		if r.Expires.After(now) {
			out[id] = r
		}
	}
	return out
}
