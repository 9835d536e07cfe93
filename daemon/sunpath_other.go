//go:build !linux

package daemon

// sunPathMax is the size of sockaddr_un.sun_path on the BSDs and macOS,
// including the final NUL.
const sunPathMax = 104
