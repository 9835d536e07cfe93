//go:build amd64 && !purego

package sensor

import "golang.org/x/sys/cpu"

// classifyAVX2 fills m[0:n] with the classes of the n blocks of 64 bytes
// at p, by the nibble tables t (see nibbleTables).
//
//go:noescape
func classifyAVX2(p *byte, n int, m *bmask, t *[10][32]byte)

// classifyVBMI is classifyAVX2 with AVX-512 VBMI: a lookup of all 256
// byte values in t, 64 bytes at a time, then the class bits in bits.
//
//go:noescape
func classifyVBMI(p *byte, n int, m *bmask, t *[256]byte, bits *[8][64]byte)

// hasAVX2 and hasVBMI select the vector classifiers; tests turn them off
// to compare each with the generic one.
var (
	hasAVX2 = cpu.X86.HasAVX2
	hasVBMI = cpu.X86.HasAVX512F && cpu.X86.HasAVX512BW && cpu.X86.HasAVX512VBMI
)

// classBytes is each byte's classes, bit i for leapClasses[i], and
// classBits each bit alone, 64 times over.
var classBytes, classBits = func() (t [256]byte, b [8][64]byte) {
	for c := range 256 {
		for i, in := range leapClasses {
			if in(byte(c)) {
				t[c] |= 1 << i
			}
		}
	}
	for i := range b {
		for j := range b[i] {
			b[i][j] = 1 << i
		}
	}
	return t, b
}()

// classifyBlocks fills m[i] with the classes of p[64*i:64*i+64], for every
// block of p (len(p) is a multiple of 64).
func classifyBlocks(p []byte, m []bmask) {
	if hasVBMI && len(m) > 0 {
		classifyVBMI(&p[0], len(m), &m[0], &classBytes, &classBits)
		return
	}
	if hasAVX2 && len(m) > 0 {
		classifyAVX2(&p[0], len(m), &m[0], &nibbles)
		return
	}
	classifyGeneric(p, m)
}
