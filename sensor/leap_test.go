package sensor

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// TestLeapJoins holds the leap to the byte path on joins it must see
// through: escaped quotes, \u quotes, and short runs before a gap.
func TestLeapJoins(t *testing.T) {
	v := string(fixtureSecrets["openai"].Value)
	c := string(fixtureSecrets["canary"].Value)
	pad := strings.Repeat(`{"role":"user","content":"of keys: the hex is id"},`, 20)
	for _, body := range []string{
		pad + `{"x":"code: k = \"` + v[:20] + `\", \"` + v[20:] + `\";"}` + pad,
		pad + `{"x":"code: k = \"` + c[:5] + `\" + \"` + c[5:] + `\";"}` + pad,
		pad + `{"x":"a: \u0022` + c[:5] + `\u0022,\u0022` + c[5:] + `\u0022;"}` + pad,
		// Runs whose last windows the main lane does not test when the
		// octet filter is on (fewer than 15 key characters follow them),
		// but whose form goes on across the join.
		pad + `k = mine` + v[:9] + `" + "` + v[9:] + `;` + pad,
		pad + `k = abcdefghijklmnopqrstuvwxyz` + v[:10] + `", "` + v[10:] + `;` + pad,
		// Percent signs: %d passes through, %41 is an A, %4 at a cut.
		pad + `fmt.Printf("%d %x%d\n", n, ` + c[:6] + `%` + fmt.Sprintf("%X", c[6]) + c[7:] + `)` + pad,
		// A gap of \u escapes: 12 normalised bytes from 62 raw ones.
		pad + `k = "` + c[:5] + `"` + strings.Repeat(`\u0020`, 10) + `,"` + c[5:] + `";` + pad,
	} {
		for _, m := range oracleMatchers {
			checkFastPaths(t, m, "application/json", []byte(body), nil)
			checkFastPaths(t, m, "application/json", []byte(body), []byte{200, 7, 255})
		}
	}
}

// TestNibbleTables checks the vector classifier's tables against the
// classes they stand for, for every byte.
func TestNibbleTables(t *testing.T) {
	rows := [8]int{2, 3, 4, 6, 5, 7, 8, 9}
	for c := range 256 {
		h, lo := c>>4, c&15
		for i, in := range leapClasses {
			row := nibbles[0][h]
			if i == 3 {
				row = nibbles[1][h]
			}
			if got := nibbles[rows[i]][lo]&row != 0; got != in(byte(c)) {
				t.Errorf("byte %#x class %d: tables say %v, want %v", c, i, got, in(byte(c)))
			}
		}
	}
}

// TestClassifyMatchesGeneric holds each vector classifier the machine
// has to the word-at-a-time one, over every byte value at every offset
// and random blocks.
func TestClassifyMatchesGeneric(t *testing.T) {
	vbmi, avx2 := hasVBMI, hasAVX2
	defer func() { hasVBMI, hasAVX2 = vbmi, avx2 }()
	r := rand.New(rand.NewPCG(1, 2))
	p := make([]byte, 64*40)
	for i := range 256 * 4 {
		p[i] = byte(i)
	}
	for i := 256 * 4; i < len(p); i++ {
		p[i] = byte(r.UintN(256))
	}
	tried := 0
	for _, v := range []struct {
		name       string
		vbmi, avx2 bool
	}{{"AVX-512 VBMI", true, false}, {"AVX2", false, true}} {
		if v.vbmi && !vbmi || v.avx2 && !avx2 {
			t.Logf("%s: not on this machine (or a purego build)", v.name)
			continue
		}
		tried++
		hasVBMI, hasAVX2 = v.vbmi, v.avx2
		for n := 0; n <= 40; n++ {
			want, got := make([]bmask, n), make([]bmask, n)
			for i := range got {
				got[i].u3 = ^uint64(0) // the vector classifiers must clear these too
			}
			classifyGeneric(p[:64*n], want)
			classifyBlocks(p[:64*n], got)
			if !slices.Equal(got, want) {
				t.Fatalf("%s, %d blocks: classes differ from the generic ones", v.name, n)
			}
		}
	}
	if tried == 0 {
		t.Skip("no vector classifier on this machine: the generic one runs, and the other tests cover it")
	}
}

// TestEscapers holds the carry trick to the backslash runs counted one by
// one: in each run, every other backslash escapes, from the first.
func TestEscapers(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for range 100000 {
		bs := r.Uint64() & r.Uint64() // runs of every length
		if r.IntN(4) == 0 {
			bs |= r.Uint64()
		}
		var want uint64
		for i := 0; i < 64; {
			if bs>>i&1 == 0 {
				i++
				continue
			}
			for k := 0; i < 64 && bs>>i&1 != 0; i, k = i+1, k+1 {
				if k%2 == 0 {
					want |= 1 << i
				}
			}
		}
		if got := escapers(bs); got != want {
			t.Fatalf("escapers(%064b) = %064b, want %064b", bs, got, want)
		}
	}
}

// TestTrigramMasksMatchScalar holds the trigram masks, the vector ones
// where the machine has them and the generic ones, to hasTrigram at each
// position: over random bytes and a chat body, with the keyword table and
// with a random one, in which half of all bits are set.
func TestTrigramMasksMatchScalar(t *testing.T) {
	avx := hasAVX512
	defer func() { hasAVX512 = avx }()
	r := rand.New(rand.NewPCG(5, 6))
	random := make([]byte, 64*24+2)
	for i := range random {
		random[i] = byte(r.UintN(256))
	}
	var half [1 << 10]uint64
	for i := range half {
		half[i] = r.Uint64()
	}
	hits := 0
	for _, tri := range []*[1 << 10]uint64{keywordTrigrams(), &half} {
		for _, p := range [][]byte{random, chatBody(64*24 + 2)[:64*24+2]} {
			for _, vec := range []bool{false, true} {
				if vec && !avx {
					t.Log("no AVX-512 on this machine (or a purego build): the generic masks only")
					continue
				}
				hasAVX512 = vec
				for n := 1; n <= 24; n++ {
					out := make([]uint64, n)
					trigramMasks(p[:64*n+2], tri, out)
					for x := range 64 * n {
						want := hasTrigram(tri, p, x)
						if got := out[x/64]>>(x%64)&1 != 0; got != want {
							t.Fatalf("AVX-512 %v, %d blocks, position %d: bit %v, want %v", vec, n, x, got, want)
						}
						if want {
							hits++
						}
					}
				}
			}
		}
	}
	if hits == 0 {
		t.Fatal("no position hit: the test checks nothing")
	}
}
