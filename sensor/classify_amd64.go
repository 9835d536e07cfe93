//go:build amd64 && !purego

package sensor

import "golang.org/x/sys/cpu"

// classifyAVX2 fills m[0:n] with the classes of the n blocks of 64 bytes
// at p, by the nibble tables t (see nibbleTables).
//
//go:noescape
func classifyAVX2(p *byte, n int, m *bmask, t *[7][32]byte)

// hasAVX2 selects classifyAVX2; tests turn it off to compare the two.
var hasAVX2 = cpu.X86.HasAVX2

// classifyBlocks fills m[i] with the classes of p[64*i:64*i+64], for every
// block of p (len(p) is a multiple of 64).
func classifyBlocks(p []byte, m []bmask) {
	if hasAVX2 && len(m) > 0 {
		classifyAVX2(&p[0], len(m), &m[0], &nibbles)
		return
	}
	classifyGeneric(p, m)
}
