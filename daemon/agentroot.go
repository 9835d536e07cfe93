package daemon

import "sync"

// agentRoots are the `tokfence exec` processes the daemon has bound
// sessions to, by pid with their start time (so a recycled pid does not
// inherit the mark). Their descendants are agents: the control API is not
// served to them, so an agent under exec cannot mint, list or revive
// tokens even though it runs as the user.
type agentRoots struct {
	mu   sync.Mutex
	pids map[int]agentRoot
}

type agentRoot struct {
	start   uint64
	session string
}

func (a *agentRoots) add(pid int, session string) {
	start, ok := procStart(pid)
	if !ok {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.pids == nil {
		a.pids = map[int]agentRoot{}
	}
	a.pids[pid] = agentRoot{start: start, session: session}
}

func (a *agentRoots) remove(pid int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.pids, pid)
}

// under reports whether pid descends from an agent root (the root itself
// is not under it: exec must be able to kill its own session).
func (a *agentRoots) under(pid int) bool {
	_, under := a.sessionOf(pid)
	return under
}

// sessionOf returns the session of the agent root pid descends from, if
// it descends from one ("" for an absurdly deep chain, which counts as
// under a root: it is refused rather than trusted).
func (a *agentRoots) sessionOf(pid int) (string, bool) {
	a.mu.Lock()
	roots := make(map[int]agentRoot, len(a.pids))
	for k, v := range a.pids {
		roots[k] = v
	}
	a.mu.Unlock()
	if len(roots) == 0 {
		return "", false
	}
	cur := pid
	for depth := 0; depth < 128; depth++ { // a process tree is never this deep
		parent, ok := procParent(cur)
		if !ok || parent <= 1 {
			return "", false
		}
		if root, isRoot := roots[parent]; isRoot {
			if s, ok := procStart(parent); ok && s == root.start {
				return root.session, true
			}
		}
		cur = parent
	}
	return "", true
}
