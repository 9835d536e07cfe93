package daemon

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tokfence/tokfence/capability"
	"github.com/tokfence/tokfence/daemon/api"
)

// bookOf returns the book's entry names of session sid, and how many
// secrets the matcher holds.
func bookOf(d *Daemon, sid string) (names []string, held int) {
	d.book.mu.Lock()
	defer d.book.mu.Unlock()
	for k, e := range d.book.entries {
		if e.session == sid {
			names = append(names, k)
		}
	}
	return names, d.book.m.Len()
}

func TestKillTakesTheSessionOutOfTheBook(t *testing.T) {
	for _, tt := range []struct {
		name string
		kill func(e *proxyEnv, g *api.Grant) error
	}{
		{"kill", func(e *proxyEnv, g *api.Grant) error {
			_, err := e.client.Kill(context.Background(), api.KillRequest{Session: g.Session})
			return err
		}},
		{"kill --agent", func(e *proxyEnv, g *api.Grant) error {
			_, err := e.client.Kill(context.Background(), api.KillRequest{Agent: "victim"})
			return err
		}},
		{"kill --all", func(e *proxyEnv, g *api.Grant) error {
			_, err := e.client.Kill(context.Background(), api.KillRequest{All: true})
			return err
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := startProxyEnv(t, nil)
			_, keys := bookOf(e.d, "")
			g := e.grant(t, api.GrantRequest{Agent: "victim"})
			if names, held := bookOf(e.d, g.Session); len(names) != 1+len(g.Canaries) || held != keys+len(names) {
				t.Fatalf("after grant: book has %v (%d held), want the token and %d canaries", names, held, len(g.Canaries))
			}
			if err := tt.kill(e, g); err != nil {
				t.Fatal(err)
			}
			if names, held := bookOf(e.d, g.Session); len(names) != 0 || held != keys {
				t.Errorf("after %s: book has %v of the session and %d secrets, want none and %d (the keys)", tt.name, names, held, keys)
			}
		})
	}
}

func TestExpiredSessionLeavesTheBook(t *testing.T) {
	e := startProxyEnv(t, nil)
	_, keys := bookOf(e.d, "")
	g := e.grant(t, api.GrantRequest{Agent: "brief", TTL: "2m"})
	long := e.grant(t, api.GrantRequest{Agent: "long", TTL: "1h"})
	e.clock.Advance(3 * time.Minute)
	e.d.housekeep()
	if names, _ := bookOf(e.d, g.Session); len(names) != 0 {
		t.Errorf("expired session still in the book: %v", names)
	}
	if names, held := bookOf(e.d, long.Session); len(names) != 1+len(long.Canaries) || held != keys+len(names) {
		t.Errorf("live session in the book: %v (%d held), want its token and canaries and nothing else", names, held)
	}
	// A live session's canary is still caught; the expired one's token is
	// dead and no longer looked for.
	resp, _ := e.do(t, false, "POST", "/openai/v1/chat/completions",
		`{"model":"gpt-4o","messages":[{"content":"`+firstCanary(long)+`"}]}`, bearer(long.Token))
	if resp.StatusCode != 403 {
		t.Errorf("request with a live session's canary = %d, want 403", resp.StatusCode)
	}
}

func firstCanary(g *api.Grant) string {
	for _, v := range g.Canaries {
		return v
	}
	return ""
}

// TestRenewedTokenLeavesTheBookAtItsExpiry checks that a renewed session's
// old token goes at its own expiry while the session, its new token and
// its canaries stay.
func TestRenewedTokenLeavesTheBookAtItsExpiry(t *testing.T) {
	e := startProxyEnv(t, nil)
	g := e.grant(t, api.GrantRequest{Agent: "renewer", TTL: "10m"})
	e.clock.Advance(5 * time.Minute)
	r, err := e.client.Renew(context.Background(), api.RenewRequest{Session: g.Session, TTL: "30m"})
	if err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(7 * time.Minute) // the first token expired, and its minute of leeway
	e.d.housekeep()
	names, _ := bookOf(e.d, g.Session)
	toks := 0
	for _, n := range names {
		if strings.HasPrefix(n, "tok:") {
			toks++
		}
	}
	if toks != 1 || len(names) != 1+len(g.Canaries) {
		t.Errorf("book after the first token expired: %v, want the renewed token (%s) and %d canaries", names, r.Session, len(g.Canaries))
	}
}

// TestGrantsAndKillsLeaveTheBookAsItWas runs grants and kills through the
// control API and checks that the book is back to the keys alone, by the
// matcher's own accounting. (The sensor package checks the same, exactly,
// in TestBookMemoryReturnsToBase.)
func TestGrantsAndKillsLeaveTheBookAsItWas(t *testing.T) {
	e := startProxyEnv(t, nil)
	base := e.d.book.m.Size()
	_, keys := bookOf(e.d, "") // the 3 keys and their fragments
	var live []*api.Grant
	for i := range 200 {
		live = append(live, e.grant(t, api.GrantRequest{Agent: fmt.Sprint("a", i%7)}))
		if len(live) > 20 {
			if _, err := e.client.Kill(context.Background(), api.KillRequest{Session: live[0].Session}); err != nil {
				t.Fatal(err)
			}
			live = live[1:]
		}
	}
	mid := e.d.book.m.Size()
	for _, g := range live {
		if _, err := e.client.Kill(context.Background(), api.KillRequest{Session: g.Session}); err != nil {
			t.Fatal(err)
		}
	}
	end := e.d.book.m.Size()
	t.Logf("book: %d bytes with the keys, %d with %d live sessions, %d after the last kill", base, mid, len(live), end)
	// The matcher's filter may stay up to four times the size it needs
	// (it shrinks only then, so that it never flaps): 32 KiB at this size.
	if _, held := bookOf(e.d, ""); end > base+32<<10 || held != keys {
		t.Errorf("book holds %d bytes and %d secrets after every session was killed, %d bytes and %d (the keys) before the first grant", end, held, base, keys)
	}
}

// BenchmarkRegisterSession is the sensors' side of a grant and of the
// session's end (its token and four canaries put in the book, then taken
// out) with 10, 100 and 1000 sessions live.
func BenchmarkRegisterSession(b *testing.B) {
	for _, n := range []int{10, 100, 1000} {
		b.Run(fmt.Sprint("live=", n), func(b *testing.B) {
			e := startProxyEnv(b, nil)
			d := e.d
			mint := func() (string, *capability.Claims, map[string]string) {
				tok, c, err := d.auth.Mint("bench", capability.Scope{Providers: []string{"openai"}}, time.Hour)
				if err != nil {
					b.Fatal(err)
				}
				canaries, err := canaryEnv(d.policy().CanaryEnv())
				if err != nil {
					b.Fatal(err)
				}
				return tok, c, canaries
			}
			for range n {
				d.registerSession(mint())
			}
			type grant struct {
				tok      string
				c        *capability.Claims
				canaries map[string]string
			}
			gs := make([]grant, 64)
			for i := range gs {
				gs[i].tok, gs[i].c, gs[i].canaries = mint()
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				g := gs[i%len(gs)]
				d.registerSession(g.tok, g.c, g.canaries)
				d.book.dropSession(g.c.SID)
				i++
			}
		})
	}
}
