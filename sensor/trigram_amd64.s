//go:build amd64 && !purego

#include "textflag.h"

// The trigram bits of the 16 positions from off(SI) into the 16 bits of
// kmask (see trigramMasksAVX512): the three bytes of each as a dword,
// trigramBit's multiply and shift, a gather of the table's dwords, and
// each position's bit tested.
#define SIXTEEN(off, kmask) \
	VPMOVZXBD off(SI), Z0 \
	VPMOVZXBD off+1(SI), Z1 \
	VPMOVZXBD off+2(SI), Z2 \
	VPSLLD $8, Z1, Z1 \
	VPSLLD $16, Z2, Z2 \
	VPTERNLOGD $0xFE, Z2, Z1, Z0 \
	VPMULLD Z10, Z0, Z0 \
	VPSRLD $16, Z0, Z0 \
	VPSRLD $5, Z0, Z3 \
	KXNORW K1, K1, K1 \
	VPXORD Z4, Z4, Z4 \
	VPGATHERDD (R15)(Z3*4), K1, Z4 \
	VPANDD Z11, Z0, Z5 \
	VPSRLVD Z5, Z4, Z4 \
	VPTESTMD Z12, Z4, kmask

// func trigramMasksAVX512(p *byte, n int, tri *[1 << 10]uint64, out *uint64)
//
// out[i] bit k is the table's bit for the trigram at p[64*i+k], for i
// below n: the bytes p[0:64*n+2] are read, and 16 bytes from each 16th
// position up to 64*n-14, so the caller keeps 64*n+2 bytes readable.
TEXT ·trigramMasksAVX512(SB), NOSPLIT, $0-32
	MOVQ p+0(FP), SI
	MOVQ n+8(FP), CX
	MOVQ tri+16(FP), R15
	MOVQ out+24(FP), DI
	MOVL $0x9E3779B1, AX
	VPBROADCASTD AX, Z10
	MOVL $31, AX
	VPBROADCASTD AX, Z11
	MOVL $1, AX
	VPBROADCASTD AX, Z12

tloop:
	TESTQ CX, CX
	JZ tdone
	SIXTEEN(0, K2)
	SIXTEEN(16, K3)
	SIXTEEN(32, K4)
	SIXTEEN(48, K5)
	KUNPCKWD K2, K3, K2
	KUNPCKWD K4, K5, K4
	KUNPCKDQ K2, K4, K2
	KMOVQ K2, AX
	MOVQ AX, (DI)
	ADDQ $64, SI
	ADDQ $8, DI
	DECQ CX
	JMP tloop

tdone:
	VZEROUPPER
	RET
