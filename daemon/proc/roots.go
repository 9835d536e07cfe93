package proc

import "sync"

// Roots are the `tokfence exec` processes the daemon has bound
// sessions to, by pid with their start time (so a recycled pid does not
// inherit the mark). Their descendants are agents: the control API is not
// served to them, so an agent under exec cannot mint, list or revive
// tokens even though it runs as the user.
type Roots struct {
	mu   sync.Mutex
	pids map[int]root
}

type root struct {
	start   uint64
	session string
}

// Add marks pid, which runs now, as the root of session's agents.
func (a *Roots) Add(pid int, session string) {
	start, ok := Start(pid)
	if !ok {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.pids == nil {
		a.pids = map[int]root{}
	}
	a.pids[pid] = root{start: start, session: session}
}

// Remove unmarks pid (its session ended or it exited).
func (a *Roots) Remove(pid int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.pids, pid)
}

// Under reports whether pid descends from an agent root (the root itself
// is not under it: exec must be able to kill its own session).
func (a *Roots) Under(pid int) bool {
	_, under := a.SessionOf(pid)
	return under
}

// SessionOf returns the session of the agent root pid descends from, if
// it descends from one ("" for an absurdly deep chain, which counts as
// under a root: it is refused rather than trusted).
func (a *Roots) SessionOf(pid int) (string, bool) {
	a.mu.Lock()
	roots := make(map[int]root, len(a.pids))
	for k, v := range a.pids {
		roots[k] = v
	}
	a.mu.Unlock()
	if len(roots) == 0 {
		return "", false
	}
	cur := pid
	for depth := 0; depth < 128; depth++ { // a process tree is never this deep
		parent, ok := Parent(cur)
		if !ok || parent <= 1 {
			return "", false
		}
		if root, isRoot := roots[parent]; isRoot {
			if s, ok := Start(parent); ok && s == root.start {
				return root.session, true
			}
		}
		cur = parent
	}
	return "", true
}
