//go:build !linux

package localsock

// SunPathMax is the size of sockaddr_un.sun_path on the BSDs and macOS,
// including the final NUL.
const SunPathMax = 104
