//go:build !amd64 || purego

package sensor

// hasAVX2 and hasVBMI are false off amd64: the generic classifier runs.
var hasAVX2, hasVBMI = false, false

// classifyBlocks fills m[i] with the classes of p[64*i:64*i+64], for every
// block of p (len(p) is a multiple of 64).
func classifyBlocks(p []byte, m []bmask) { classifyGeneric(p, m) }
