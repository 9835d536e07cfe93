//go:build !amd64 || purego

package sensor

// hasAVX512 is false off amd64: the generic trigram loop runs.
var hasAVX512 = false

// trigramMasks sets out[i] to the trigram bits of the 64 positions from
// p[64*i], for each out[i]: p holds 64*len(out)+2 bytes or more.
func trigramMasks(p []byte, tri *[1 << 10]uint64, out []uint64) {
	trigramMasksGeneric(p, tri, out)
}
