//go:build amd64 && !purego

#include "textflag.h"

// bmask's layout: eight class masks (k, g, q, s, b, bs, ntr, uu) at 0 to
// 56, then the four unit masks (u1, u3, u4, u5) the leap fills, which
// the classifiers zero; 96 bytes in all.

// One class of the 32 bytes whose low nibbles are in Y2: its low-nibble
// table at tbl(R15), the row bits in rows; the 32-bit mask goes to
// off(DI).
#define CLASS(tbl, rows, off) \
	VMOVDQU tbl(R15), Y5 \
	VPSHUFB Y2, Y5, Y5 \
	VPAND rows, Y5, Y5 \
	VPCMPEQB Y7, Y5, Y5 \
	VPMOVMSKB Y5, AX \
	NOTL AX \
	MOVL AX, off(DI)

// The 32 bytes at off(SI): their nibbles, the ASCII row bits (Y3) and the
// special bytes' row bits (Y4), then each class's half of its mask.
#define HALF(off, half) \
	VMOVDQU off(SI), Y0 \
	VPSRLW $4, Y0, Y1 \
	VPAND Y15, Y0, Y2 \
	VPAND Y15, Y1, Y1 \
	VPSHUFB Y1, Y14, Y3 \
	VPSHUFB Y1, Y9, Y4 \
	CLASS(64, Y3, 0+half) \
	CLASS(96, Y3, 8+half) \
	CLASS(128, Y3, 16+half) \
	CLASS(192, Y4, 24+half) \
	CLASS(160, Y3, 32+half) \
	CLASS(224, Y3, 40+half) \
	CLASS(256, Y3, 48+half) \
	CLASS(288, Y3, 56+half)

// The arguments both classifiers share: p, n, m and t.
#define ARGS \
	MOVQ p+0(FP), SI \
	MOVQ n+8(FP), CX \
	MOVQ m+16(FP), DI \
	MOVQ t+24(FP), R15

// The unit masks zeroed (R13 holds 0), and on to the next block.
#define NEXT \
	MOVQ R13, 64(DI) \
	MOVQ R13, 72(DI) \
	MOVQ R13, 80(DI) \
	MOVQ R13, 88(DI) \
	ADDQ $64, SI \
	ADDQ $96, DI \
	DECQ CX

// func classifyAVX2(p *byte, n int, m *bmask, t *[10][32]byte)
//
// t: the row bit of each high nibble for the ASCII classes and for the
// special bytes, then the low-nibble tables of key, gap, quote, special,
// breaker, backslash, n t r and u (see nibbles).
TEXT ·classifyAVX2(SB), NOSPLIT, $0-32
	ARGS
	VMOVDQU 0(R15), Y14
	VMOVDQU 32(R15), Y9
	MOVQ $0x0f0f0f0f0f0f0f0f, AX
	MOVQ AX, X15
	VPBROADCASTQ X15, Y15
	VPXOR Y7, Y7, Y7
	XORQ R13, R13

loop:
	TESTQ CX, CX
	JZ done
	HALF(0, 0)
	HALF(32, 4)
	NEXT
	JMP loop

done:
	VZEROUPPER
	RET

// func classifyVBMI(p *byte, n int, m *bmask, t *[256]byte, bits *[8][64]byte)
//
// The class byte of each of 64 bytes at once: two VPERMI2B lookups, one
// in the table's ASCII half and one in its upper half (each by the low 7
// bits), blended by each byte's top bit; then one VPTESTMB per class.
TEXT ·classifyVBMI(SB), NOSPLIT, $0-40
	ARGS
	MOVQ bits+32(FP), R14
	VMOVDQU64 0(R15), Z10
	VMOVDQU64 64(R15), Z11
	VMOVDQU64 128(R15), Z12
	VMOVDQU64 192(R15), Z13
	VMOVDQU64 0(R14), Z20
	VMOVDQU64 64(R14), Z21
	VMOVDQU64 128(R14), Z22
	VMOVDQU64 192(R14), Z23
	VMOVDQU64 256(R14), Z24
	VMOVDQU64 320(R14), Z25
	VMOVDQU64 384(R14), Z26
	VMOVDQU64 448(R14), Z27
	XORQ R13, R13

vloop:
	TESTQ CX, CX
	JZ vdone
	VMOVDQU64 (SI), Z0
	VMOVDQA64 Z0, Z1
	VPERMI2B Z11, Z10, Z1
	VMOVDQA64 Z0, Z2
	VPERMI2B Z13, Z12, Z2
	VPMOVB2M Z0, K1
	VPBLENDMB Z2, Z1, K1, Z3
	VPTESTMB Z20, Z3, K2
	VPTESTMB Z21, Z3, K3
	VPTESTMB Z22, Z3, K4
	VPTESTMB Z23, Z3, K5
	VPTESTMB Z24, Z3, K6
	VPTESTMB Z25, Z3, K7
	KMOVQ K2, AX
	KMOVQ K3, BX
	KMOVQ K4, DX
	KMOVQ K5, R8
	KMOVQ K6, R9
	KMOVQ K7, R10
	VPTESTMB Z26, Z3, K2
	VPTESTMB Z27, Z3, K3
	KMOVQ K2, R11
	KMOVQ K3, R12
	MOVQ AX, 0(DI)
	MOVQ BX, 8(DI)
	MOVQ DX, 16(DI)
	MOVQ R8, 24(DI)
	MOVQ R9, 32(DI)
	MOVQ R10, 40(DI)
	MOVQ R11, 48(DI)
	MOVQ R12, 56(DI)
	NEXT
	JMP vloop

vdone:
	VZEROUPPER
	RET
