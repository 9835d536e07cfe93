package capability

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// sessionFixture mints tokens and registers their sessions.
type sessionFixture struct {
	*fixture
	reg *Registry
}

func newSessionFixture(t *testing.T) *sessionFixture {
	fx := newFixture(t)
	reg := NewRegistry(fx.clk.Now)
	reg.SetRevocations(fx.r)
	return &sessionFixture{fixture: fx, reg: reg}
}

func (sf *sessionFixture) add(t *testing.T, agent string, scope Scope) *Session {
	t.Helper()
	_, c, err := sf.a.Mint(agent, scope, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return sf.reg.Add(c, PeerInfo{UID: 1000, PID: 42, Exe: "/usr/bin/agent"})
}

func TestKillCancelsContextWithErrRevoked(t *testing.T) {
	sf := newSessionFixture(t)
	s := sf.add(t, "coder", testScope)
	stream, cancel := context.WithCancel(s.Context()) // an in-flight stream
	defer cancel()
	if got, ok := sf.reg.Kill(s.ID); !ok || got != s {
		t.Fatalf("Kill(%s) = %v, %v, want the session", s.ID, got, ok)
	}
	select {
	case <-stream.Done():
	default:
		t.Fatal("kill did not cut the derived stream context")
	}
	if cause := context.Cause(stream); !errors.Is(cause, ErrRevoked) {
		t.Fatalf("context.Cause = %v, want %v", cause, ErrRevoked)
	}
	if _, ok := sf.reg.Get(s.ID); ok {
		t.Fatal("killed session is still registered")
	}
	if _, err := s.AddRequest(); !errors.Is(err, ErrRevoked) {
		t.Fatalf("AddRequest on a killed session = %v, want %v", err, ErrRevoked)
	}
	if _, ok := sf.reg.Kill(s.ID); ok {
		t.Fatal("second Kill reported success")
	}
}

func TestKillAgentOnlyThatAgent(t *testing.T) {
	sf := newSessionFixture(t)
	c1 := sf.add(t, "coder", testScope)
	c2 := sf.add(t, "coder", testScope)
	r := sf.add(t, "reviewer", testScope)
	killed := sf.reg.KillAgent("coder")
	if len(killed) != 2 || !c1.Killed() || !c2.Killed() {
		t.Fatalf("KillAgent(coder) killed %d sessions, want both coder sessions", len(killed))
	}
	if r.Killed() {
		t.Fatal("KillAgent(coder) killed the reviewer's session")
	}
	if got := sf.reg.List(); len(got) != 1 || got[0] != r {
		t.Fatalf("List after KillAgent = %v, want only the reviewer", got)
	}
	if all := sf.reg.KillAll(); len(all) != 1 || !r.Killed() {
		t.Fatalf("KillAll killed %d sessions, want 1", len(all))
	}
}

func TestAddRequestLimit(t *testing.T) {
	sf := newSessionFixture(t)
	scope := testScope
	scope.MaxRequests = 10
	s := sf.add(t, "coder", scope)
	var wg sync.WaitGroup
	var mu sync.Mutex
	admitted, limited := 0, 0
	for range 50 {
		wg.Go(func() {
			_, err := s.AddRequest()
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				admitted++
			case errors.Is(err, ErrLimit):
				limited++
			default:
				t.Errorf("AddRequest = %v", err)
			}
		})
	}
	wg.Wait()
	if admitted != 10 || limited != 40 || s.Requests() != 10 {
		t.Fatalf("admitted %d, limited %d, Requests() = %d; want 10, 40, 10", admitted, limited, s.Requests())
	}
	unlimited := sf.add(t, "coder", testScope)
	for i := range 100 {
		if n, err := unlimited.AddRequest(); err != nil || n != int64(i+1) {
			t.Fatalf("AddRequest #%d without a limit = %d, %v", i+1, n, err)
		}
	}
}

func TestGetOrRestore(t *testing.T) {
	sf := newSessionFixture(t)
	tok, c := sf.mint(t, "coder")
	// A daemon restart: a new Registry, and the agent presents its token.
	reg := NewRegistry(sf.clk.Now)
	verified, err := sf.a.Verify(tok)
	if err != nil {
		t.Fatal(err)
	}
	s, err := reg.GetOrRestore(verified)
	if err != nil || s.ID != c.SID || s.Agent != "coder" || !s.Expires().Equal(c.ExpiresAt.Time) {
		t.Fatalf("GetOrRestore = %+v, %v, want session %s", s, err, c.SID)
	}
	if again, err := reg.GetOrRestore(verified); err != nil || again != s {
		t.Fatalf("second GetOrRestore = %p, %v, want the same session %p", again, err, s)
	}
	reg.Kill(s.ID)
	if _, err := reg.GetOrRestore(verified); !errors.Is(err, ErrRevoked) {
		t.Fatalf("GetOrRestore(killed) = %v, want %v", err, ErrRevoked)
	}
	if s := reg.Add(verified, PeerInfo{}); !s.Killed() {
		t.Fatal("Add of a killed session returned a live session")
	}
	_, c3 := sf.mint(t, "coder")
	reg.SetRevocations(sf.r)
	if err := sf.r.RevokeSession(c3.SID, c3.ExpiresAt.Time); err != nil {
		t.Fatal(err)
	}
	if _, err := reg.GetOrRestore(c3); !errors.Is(err, ErrRevoked) {
		t.Fatalf("GetOrRestore(revoked in the list) = %v, want %v", err, ErrRevoked)
	}
	_, c2 := sf.mint(t, "coder")
	sf.clk.Advance(2 * time.Hour)
	if _, err := reg.GetOrRestore(c2); !errors.Is(err, ErrExpired) {
		t.Fatalf("GetOrRestore(expired) = %v, want %v", err, ErrExpired)
	}
}

func TestListPrunesExpiredAndSorts(t *testing.T) {
	sf := newSessionFixture(t)
	short, err := func() (*Session, error) {
		_, c, err := sf.a.Mint("coder", testScope, time.Minute)
		if err != nil {
			return nil, err
		}
		return sf.reg.Add(c, PeerInfo{}), nil
	}()
	if err != nil {
		t.Fatal(err)
	}
	sf.clk.Advance(time.Second)
	second := sf.add(t, "coder", testScope)
	sf.clk.Advance(time.Second)
	third := sf.add(t, "reviewer", testScope)
	if got := sf.reg.List(); len(got) != 3 || got[0] != short || got[1] != second || got[2] != third {
		t.Fatalf("List = %v, want oldest first", got)
	}
	sf.clk.Advance(time.Minute)
	got := sf.reg.List()
	if len(got) != 2 || got[0] != second || got[1] != third {
		t.Fatalf("List after expiry = %v, want the two live sessions", got)
	}
	if cause := context.Cause(short.Context()); !errors.Is(cause, ErrExpired) {
		t.Fatalf("pruned session cause = %v, want %v", cause, ErrExpired)
	}
	if _, ok := sf.reg.Get(short.ID); ok {
		t.Fatal("expired session still registered after List")
	}
}

func TestConcurrentVerifyKillAndRevokeAreRaceFree(t *testing.T) {
	sf := newSessionFixture(t)
	type grant struct {
		tok string
		c   *Claims
	}
	var grants []grant
	for range 8 {
		tok, c := sf.mint(t, "coder")
		sf.reg.Add(c, PeerInfo{})
		grants = append(grants, grant{tok, c})
	}
	var wg sync.WaitGroup
	for _, g := range grants {
		wg.Go(func() {
			for range 50 {
				c, err := sf.a.Verify(g.tok)
				if err != nil && !errors.Is(err, ErrRevoked) {
					t.Errorf("Verify = %v", err)
					return
				}
				if err == nil {
					if s, err := sf.reg.GetOrRestore(c); err == nil {
						s.AddRequest()
					}
				}
				sf.reg.List()
			}
		})
	}
	for _, g := range grants[:4] {
		wg.Go(func() {
			if err := sf.r.RevokeSession(g.c.SID, g.c.ExpiresAt.Time); err != nil {
				t.Error(err)
			}
			sf.reg.Kill(g.c.SID)
		})
	}
	wg.Wait()
	for i, g := range grants {
		_, err := sf.a.Verify(g.tok)
		if killed := i < 4; killed != errors.Is(err, ErrRevoked) {
			t.Errorf("Verify(grant %d) = %v, killed = %v", i, err, killed)
		}
	}
}
