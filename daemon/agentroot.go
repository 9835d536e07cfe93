package daemon

import "sync"

// agentRoots are the `tokfence exec` processes the daemon has bound
// sessions to, by pid with their start time (so a recycled pid does not
// inherit the mark). Their descendants are agents: the control API is not
// served to them, so an agent under exec cannot mint, list or revive
// tokens even though it runs as the user.
type agentRoots struct {
	mu   sync.Mutex
	pids map[int]uint64
}

func (a *agentRoots) add(pid int) {
	start, ok := procStart(pid)
	if !ok {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.pids == nil {
		a.pids = map[int]uint64{}
	}
	a.pids[pid] = start
}

func (a *agentRoots) remove(pid int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.pids, pid)
}

// under reports whether pid descends from an agent root (the root itself
// is not under it: exec must be able to kill its own session).
func (a *agentRoots) under(pid int) bool {
	a.mu.Lock()
	roots := make(map[int]uint64, len(a.pids))
	for k, v := range a.pids {
		roots[k] = v
	}
	a.mu.Unlock()
	if len(roots) == 0 {
		return false
	}
	cur := pid
	for depth := 0; depth < 128; depth++ { // a process tree is never this deep
		parent, ok := procParent(cur)
		if !ok || parent <= 1 {
			return false
		}
		if start, isRoot := roots[parent]; isRoot {
			if s, ok := procStart(parent); ok && s == start {
				return true
			}
		}
		cur = parent
	}
	return true // an absurdly deep chain is refused rather than trusted
}
