// Package proc is the daemon's hold on processes: hardening its own
// (no ptrace by the same uid, no core dumps), reading /proc for a
// process's parent and start time, holding a fence's init by pidfd to
// kill it or learn of its exit, and knowing which processes descend from
// a `tokfence exec` (Roots), so that the control API is not served to its
// agents.
//
// The threat is PID reuse: the agent runs as the user and can fork until
// a pid it knows comes round again, so a pid alone never names a process
// for long. Hence: a process is held by pidfd from the moment the daemon
// first trusts it (OpenChild checks the parent only after the pidfd is
// open, so the parent read is the held process's own; WaitExit opens one
// before it waits); a Roots mark is a pid with its start time in clock
// ticks since boot, which together name one process for the life of the
// system, so a recycled pid does not inherit the mark; and a descent
// deeper than any real process tree counts as under a root (refused, not
// trusted). Off Linux there is no /proc and no pidfd: Roots finds no one
// and a Handle is a pid, polled.
package proc
