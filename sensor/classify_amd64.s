//go:build amd64 && !purego

#include "textflag.h"

// One half block: the 32 bytes at off(SI) into the five 32-bit masks
// k, g, q, b, s (registers). A byte is in an ASCII class when its low
// nibble's entry in the class's table and its high nibble's row bit
// (Y14) share a bit; the special bytes have their own row bits (Y9).
#define HALF(off, k, g, q, b, s) \
	VMOVDQU off(SI), Y0 \
	VPSRLW $4, Y0, Y1 \
	VPAND Y15, Y0, Y2 \
	VPAND Y15, Y1, Y1 \
	VPSHUFB Y1, Y14, Y3 \
	VPSHUFB Y1, Y9, Y4 \
	VPSHUFB Y2, Y13, Y5 \
	VPAND Y3, Y5, Y5 \
	VPCMPEQB Y7, Y5, Y5 \
	VPMOVMSKB Y5, k \
	VPSHUFB Y2, Y12, Y5 \
	VPAND Y3, Y5, Y5 \
	VPCMPEQB Y7, Y5, Y5 \
	VPMOVMSKB Y5, g \
	VPSHUFB Y2, Y11, Y5 \
	VPAND Y3, Y5, Y5 \
	VPCMPEQB Y7, Y5, Y5 \
	VPMOVMSKB Y5, q \
	VPSHUFB Y2, Y10, Y5 \
	VPAND Y3, Y5, Y5 \
	VPCMPEQB Y7, Y5, Y5 \
	VPMOVMSKB Y5, b \
	VPSHUFB Y2, Y8, Y5 \
	VPAND Y4, Y5, Y5 \
	VPCMPEQB Y7, Y5, Y5 \
	VPMOVMSKB Y5, s \
	NOTL k \
	NOTL g \
	NOTL q \
	NOTL b \
	NOTL s

// func classifyAVX2(p *byte, n int, m *bmask, t *[7][32]byte)
TEXT ·classifyAVX2(SB), NOSPLIT, $0-32
	MOVQ p+0(FP), SI
	MOVQ n+8(FP), CX
	MOVQ m+16(FP), DI
	MOVQ t+24(FP), R15
	// t: the row bits of the ASCII classes and of the special bytes, then
	// the low-nibble tables of key, gap, quote, breaker and special.
	VMOVDQU 0(R15), Y14
	VMOVDQU 32(R15), Y9
	VMOVDQU 64(R15), Y13
	VMOVDQU 96(R15), Y12
	VMOVDQU 128(R15), Y11
	VMOVDQU 160(R15), Y10
	MOVQ $0x0f0f0f0f0f0f0f0f, AX
	MOVQ AX, X15
	VPBROADCASTQ X15, Y15
	VMOVDQU 192(R15), Y8
	VPXOR Y7, Y7, Y7

loop:
	TESTQ CX, CX
	JZ done
	HALF(0, AX, BX, DX, R8, R9)
	HALF(32, R10, R11, R12, R13, R14)
	SHLQ $32, R10
	ORQ R10, AX
	SHLQ $32, R11
	ORQ R11, BX
	SHLQ $32, R12
	ORQ R12, DX
	SHLQ $32, R13
	ORQ R13, R8
	SHLQ $32, R14
	ORQ R14, R9
	MOVQ AX, 0(DI)
	MOVQ BX, 8(DI)
	MOVQ DX, 16(DI)
	MOVQ R9, 24(DI)
	MOVQ R8, 32(DI)
	XORQ AX, AX
	MOVQ AX, 40(DI)
	MOVQ AX, 48(DI)
	MOVQ AX, 56(DI)
	MOVQ AX, 64(DI)
	ADDQ $64, SI
	ADDQ $72, DI
	DECQ CX
	JMP loop

done:
	VZEROUPPER
	RET

// func classifyVBMI(p *byte, n int, m *bmask, t *[256]byte, bits *[5][64]byte)
//
// The class byte of each of 64 bytes at once: two VPERMI2B lookups, one
// in the table's ASCII half and one in its upper half (each by the low 7
// bits), blended by each byte's top bit; then one VPTESTMB per class.
TEXT ·classifyVBMI(SB), NOSPLIT, $0-40
	MOVQ p+0(FP), SI
	MOVQ n+8(FP), CX
	MOVQ m+16(FP), DI
	MOVQ t+24(FP), R15
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
	KMOVQ K2, AX
	KMOVQ K3, BX
	KMOVQ K4, DX
	KMOVQ K5, R8
	KMOVQ K6, R9
	MOVQ AX, 0(DI)
	MOVQ BX, 8(DI)
	MOVQ DX, 16(DI)
	MOVQ R8, 24(DI)
	MOVQ R9, 32(DI)
	MOVQ R13, 40(DI)
	MOVQ R13, 48(DI)
	MOVQ R13, 56(DI)
	MOVQ R13, 64(DI)
	ADDQ $64, SI
	ADDQ $72, DI
	DECQ CX
	JMP vloop

vdone:
	VZEROUPPER
	RET
