package audit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

// fakeClock returns a clock that advances one second per call.
func fakeClock() func() time.Time {
	var mu sync.Mutex
	now := t0
	return func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		now = now.Add(time.Second)
		return now
	}
}

func openLog(t testing.TB, dir string, opts Options) *Log {
	t.Helper()
	if opts.Clock == nil {
		opts.Clock = fakeClock()
	}
	l, err := Open(dir, opts)
	if err != nil {
		t.Fatalf("Open(%q) = %v", dir, err)
	}
	return l
}

// appendN appends n request records and closes nothing.
func appendN(t testing.TB, l *Log, n int) {
	t.Helper()
	for i := range n {
		uid := 1000
		_, err := l.Append(Record{Event: EventRequest, Session: fmt.Sprintf("s%d", i%3), Agent: "coder",
			PeerUID: &uid, Provider: "openai", Model: "gpt-4o", Method: "POST", Path: "/v1/chat/completions",
			Status: 200, LatencyMS: 12.5, Usage: &Usage{InputTokens: 10, OutputTokens: 20}})
		if err != nil {
			t.Fatalf("Append #%d = %v", i, err)
		}
	}
}

// newTrail writes a closed trail of n records and returns its directory.
func newTrail(t testing.TB, n int, maxBytes int64) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "audit")
	l := openLog(t, dir, Options{MaxFileBytes: maxBytes, NoSync: true})
	appendN(t, l, n)
	if err := l.Close(); err != nil {
		t.Fatalf("Close = %v", err)
	}
	return dir
}

func mustVerify(t testing.TB, dir string) Result {
	t.Helper()
	res, err := Verify(dir)
	if err != nil {
		t.Fatalf("Verify(%q) = %v, want nil", dir, err)
	}
	return res
}

func readLines(t testing.TB, path string) [][]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.SplitAfter(b, []byte{'\n'})
}

func writeLines(t testing.TB, path string, lines [][]byte) {
	t.Helper()
	if err := os.WriteFile(path, bytes.Join(lines, nil), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestAppendReopenContinuesChain(t *testing.T) {
	dir := newTrail(t, 3, 0)
	l := openLog(t, dir, Options{NoSync: true})
	r, err := l.Append(Record{Event: EventDaemonStart})
	if err != nil {
		t.Fatal(err)
	}
	if r.Seq != 4 {
		t.Errorf("first Append after reopen: Seq = %d, want 4", r.Seq)
	}
	lines := readLines(t, filepath.Join(dir, fileName(1)))
	if want := lineHash(bytes.TrimSuffix(lines[2], []byte{'\n'})); r.Prev != want {
		t.Errorf("Prev = %s, want hash of record 3 %s", r.Prev, want)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if res := mustVerify(t, dir); res.Records != 4 || res.First != 1 || res.Last != 4 || res.Unanchored != 0 {
		t.Errorf("Verify = %+v, want 4 records 1..4, none unanchored", res)
	}
}

func TestFirstRecordCarriesGenesis(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "audit")
	l := openLog(t, dir, Options{NoSync: true})
	defer l.Close()
	r, err := l.Append(Record{Event: EventDaemonStart})
	if err != nil {
		t.Fatal(err)
	}
	if r.Seq != 1 || r.Prev != genesis || !r.Time.Equal(t0.Add(time.Second)) {
		t.Errorf("first record = seq %d prev %s time %v, want 1, zeros, %v", r.Seq, r.Prev, r.Time, t0.Add(time.Second))
	}
	for name, want := range map[string]os.FileMode{"": 0o700, fileName(1): 0o600, headName: 0o600} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("mode of %q = %04o, want %04o", name, got, want)
		}
	}
}

func TestVerifyAcrossRotation(t *testing.T) {
	dir := newTrail(t, 40, 1024)
	res := mustVerify(t, dir)
	if res.Records != 40 || res.Files < 4 {
		t.Fatalf("Verify = %+v, want 40 records in at least 4 files", res)
	}
	prevLines := readLines(t, filepath.Join(dir, fileName(1)))
	last := prevLines[len(prevLines)-2] // SplitAfter leaves an empty tail
	first := readLines(t, filepath.Join(dir, fileName(2)))[0]
	if !bytes.Contains(first, []byte(lineHash(bytes.TrimSuffix(last, []byte{'\n'})))) {
		t.Errorf("first record of %s does not carry the hash of the last record of %s", fileName(2), fileName(1))
	}
	for _, n := range []int{1, 2} {
		fi, err := os.Stat(filepath.Join(dir, fileName(n)))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() > 1024 {
			t.Errorf("%s is %d bytes, over MaxFileBytes 1024", fileName(n), fi.Size())
		}
	}
}

func TestConcurrentAppend(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "audit")
	l := openLog(t, dir, Options{MaxFileBytes: 8 << 10, NoSync: true})
	const workers, each = 50, 20
	seqs := make(chan uint64, workers*each)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for range each {
				r, err := l.Append(Record{Event: EventRequest, Agent: fmt.Sprintf("a%d", w)})
				if err != nil {
					t.Errorf("Append = %v", err)
					return
				}
				seqs <- r.Seq
			}
		})
	}
	wg.Wait()
	close(seqs)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	seen := make(map[uint64]bool)
	for s := range seqs {
		if seen[s] {
			t.Errorf("seq %d returned twice", s)
		}
		seen[s] = true
	}
	for s := uint64(1); s <= workers*each; s++ {
		if !seen[s] {
			t.Errorf("seq %d never returned", s)
		}
	}
	if res := mustVerify(t, dir); res.Records != workers*each || res.Files < 2 {
		t.Errorf("Verify = %+v, want %d records over several files", res, workers*each)
	}
}

func TestSubscribe(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "audit")
	l := openLog(t, dir, Options{NoSync: true})
	ctx, cancel := context.WithCancel(context.Background())
	ch := l.Subscribe(ctx)
	kept := l.Subscribe(context.Background())
	appendN(t, l, 3)
	for want := uint64(1); want <= 3; want++ {
		if r := <-ch; r.Seq != want {
			t.Errorf("subscriber got seq %d, want %d", r.Seq, want)
		}
	}
	cancel()
	if _, ok := <-ch; ok {
		t.Error("channel still open after its context was cancelled")
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	n := 0
	for range kept {
		n++
	}
	if n != 3 {
		t.Errorf("second subscriber got %d records before Close, want 3", n)
	}
	if _, err := l.Append(Record{Event: EventDaemonStop}); !errors.Is(err, ErrClosed) {
		t.Errorf("Append after Close = %v, want ErrClosed", err)
	}
}

func TestAppendRejects(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "audit")
	l := openLog(t, dir, Options{NoSync: true})
	defer l.Close()
	if _, err := l.Append(Record{}); err == nil {
		t.Error("Append with empty event = nil, want error")
	}
	huge := Record{Event: EventRequest, Detail: map[string]string{"x": string(bytes.Repeat([]byte("a"), maxLine))}}
	if _, err := l.Append(huge); !errors.Is(err, ErrTooLarge) {
		t.Errorf("Append of a %d-byte record = %v, want ErrTooLarge", maxLine, err)
	}
	r, err := l.Append(Record{Event: EventDaemonStart})
	if err != nil || r.Seq != 1 {
		t.Errorf("Append after rejections = seq %d, %v; want seq 1", r.Seq, err)
	}
}

func TestOpenRefusesUnsafeDir(t *testing.T) {
	base := t.TempDir()
	real := filepath.Join(base, "real")
	if err := os.Mkdir(real, 0o700); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(base, "link")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	open := filepath.Join(base, "open")
	if err := os.Mkdir(open, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(open, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{link, open} {
		if l, err := Open(dir, Options{NoSync: true}); err == nil {
			l.Close()
			t.Errorf("Open(%q) = nil, want error", dir)
		}
	}
}
