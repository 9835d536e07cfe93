package capability

import (
	"testing"
	"time"
)

// BenchmarkVerifyCold measures a full verification (base64, JSON, Ed25519)
// with the cache disabled: the cost of a token's first request.
func BenchmarkVerifyCold(b *testing.B) {
	fx := newFixture(b)
	fx.a.SetCacheSize(0)
	tok, _ := fx.mint(b, "coder")
	b.SetBytes(int64(len(tok)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := fx.a.Verify(tok); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyCached measures the steady state: a cache hit plus the
// revocation check that is never cached.
func BenchmarkVerifyCached(b *testing.B) {
	fx := newFixture(b)
	tok, _ := fx.mint(b, "coder")
	b.SetBytes(int64(len(tok)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := fx.a.Verify(tok); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyCachedParallel measures cache hits from many goroutines, as
// under concurrent agent traffic.
func BenchmarkVerifyCachedParallel(b *testing.B) {
	fx := newFixture(b)
	tok, _ := fx.mint(b, "coder")
	b.SetBytes(int64(len(tok)))
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := fx.a.Verify(tok); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkVerifyOversized measures the refusal of an oversized token, which
// must not parse or hash anything.
func BenchmarkVerifyOversized(b *testing.B) {
	fx := newFixture(b)
	tok := string(make([]byte, 1<<20))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := fx.a.Verify(tok); err == nil {
			b.Fatal("oversized token accepted")
		}
	}
}

// BenchmarkMint measures issuing a token.
func BenchmarkMint(b *testing.B) {
	fx := newFixture(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := fx.a.Mint("coder", testScope, time.Hour); err != nil {
			b.Fatal(err)
		}
	}
}
