// Package localsock is the daemon's socket and peer-credential layer: the
// Unix sockets it listens on (a private directory checked with Lstat, a
// lock, stale-socket removal, sun_path's length), the kernel's word on
// who is at the other end (SO_PEERCRED / LOCAL_PEERCRED on sockets, a
// sock_diag query for a loopback TCP peer's uid), the loopback-only TCP
// address check, and the per-peer and per-listener connection caps.
//
// Invariant: a connection a PeerListener returns carries the peer the
// kernel reported when it was accepted (ConnPeer, PeerFrom); nothing a
// peer sends can change it. A directory or socket path that is a symlink,
// foreign-owned or group/world-accessible is refused, never repaired.
package localsock
