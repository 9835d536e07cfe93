//go:build amd64 && !purego

package sensor

import "golang.org/x/sys/cpu"

// trigramMasksAVX512 sets bit k of out[i] where the trigram at p[64*i+k]
// has its bit in tri (see trigramBit), for i below n. It reads p[0:64*n+2].
//
//go:noescape
func trigramMasksAVX512(p *byte, n int, tri *[1 << 10]uint64, out *uint64)

// hasAVX512 selects trigramMasksAVX512; tests turn it off to compare it
// with the generic loop.
var hasAVX512 = cpu.X86.HasAVX512F

// trigramMasks sets out[i] to the trigram bits of the 64 positions from
// p[64*i], for each out[i]: p holds 64*len(out)+2 bytes or more.
func trigramMasks(p []byte, tri *[1 << 10]uint64, out []uint64) {
	if hasAVX512 && len(out) > 0 {
		_ = p[64*len(out)+1]
		trigramMasksAVX512(&p[0], len(out), tri, &out[0])
		return
	}
	trigramMasksGeneric(p, tri, out)
}
