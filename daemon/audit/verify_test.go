package audit

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// edit rewrites the agent of line i (0-based) of file n, keeping it valid
// JSON of the same length.
func edit(n, i int) func(t *testing.T, dir string) {
	return func(t *testing.T, dir string) {
		path := filepath.Join(dir, fileName(n))
		lines := readLines(t, path)
		edited := bytes.Replace(lines[i], []byte(`"agent":"coder"`), []byte(`"agent":"evil!"`), 1)
		if bytes.Equal(edited, lines[i]) {
			t.Fatalf("line %d of %s has no agent to edit", i+1, fileName(n))
		}
		lines[i] = edited
		writeLines(t, path, lines)
	}
}

// deleteLine removes line i (0-based; -1 for the last) of file n.
func deleteLine(n, i int) func(t *testing.T, dir string) {
	return func(t *testing.T, dir string) {
		path := filepath.Join(dir, fileName(n))
		lines := readLines(t, path)
		lines = lines[:len(lines)-1] // drop SplitAfter's empty tail
		if i < 0 {
			i = len(lines) - 1
		}
		writeLines(t, path, append(lines[:i], lines[i+1:]...))
	}
}

func TestVerifyNamesFirstBrokenRecord(t *testing.T) {
	tests := []struct {
		name     string
		rotate   bool // a trail of 40 records over several files, else 10 in one
		mutate   func(t *testing.T, dir string)
		wantFile string
		wantLine int
		wantSeq  uint64
	}{
		{"edited middle record", false, edit(1, 4), fileName(1), 5, 5},
		{"edited first record", false, edit(1, 0), fileName(1), 1, 1},
		{"edited last record", false, edit(1, 9), fileName(1), 10, 10},
		{"deleted middle record", false, deleteLine(1, 4), fileName(1), 5, 6},
		{"deleted first record", false, deleteLine(1, 0), fileName(1), 1, 2},
		{"deleted last record", false, deleteLine(1, -1), fileName(1), 10, 10},
		{"reordered pair", false, func(t *testing.T, dir string) {
			path := filepath.Join(dir, fileName(1))
			lines := readLines(t, path)
			lines[3], lines[4] = lines[4], lines[3]
			writeLines(t, path, lines)
		}, fileName(1), 4, 5},
		{"truncated mid-line", false, func(t *testing.T, dir string) {
			path := filepath.Join(dir, fileName(1))
			fi, _ := os.Stat(path)
			if err := os.Truncate(path, fi.Size()-10); err != nil {
				t.Fatal(err)
			}
		}, fileName(1), 10, 0},
		{"truncated to nothing", false, func(t *testing.T, dir string) {
			if err := os.Truncate(filepath.Join(dir, fileName(1)), 0); err != nil {
				t.Fatal(err)
			}
		}, fileName(1), 1, 1},
		{"head removed", false, func(t *testing.T, dir string) {
			if err := os.Remove(filepath.Join(dir, headName)); err != nil {
				t.Fatal(err)
			}
		}, headName, 0, 10},
		{"deleted rotated file", true, func(t *testing.T, dir string) {
			if err := os.Remove(filepath.Join(dir, fileName(2))); err != nil {
				t.Fatal(err)
			}
		}, fileName(3), 1, 0},
		{"deleted oldest file", true, func(t *testing.T, dir string) {
			if err := os.Remove(filepath.Join(dir, fileName(1))); err != nil {
				t.Fatal(err)
			}
		}, fileName(2), 1, 0},
		{"rotated file cut at a line boundary", true, deleteLine(1, -1), fileName(2), 1, 0},
		{"edited last record of a rotated file", true, edit(2, 0), "", 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := newTrail(t, 10, 0)
			if tt.rotate {
				dir = newTrail(t, 40, 1024)
			}
			tt.mutate(t, dir)
			_, err := Verify(dir)
			var be *BreakError
			if !errors.As(err, &be) {
				t.Fatalf("Verify = %v, want a *BreakError", err)
			}
			if tt.wantFile == "" {
				return // only detection is asserted
			}
			if be.File != tt.wantFile || be.Line != tt.wantLine || (tt.wantSeq != 0 && be.Seq != tt.wantSeq) {
				t.Errorf("Verify = %v, want break at %s line %d seq %d", be, tt.wantFile, tt.wantLine, tt.wantSeq)
			}
			// Open scans only the active file, so it refuses every break
			// there; breaks in archives are left to Verify.
			if l, err := Open(dir, Options{NoSync: true}); err == nil {
				l.Close()
				if !tt.rotate {
					t.Errorf("Open of a trail broken in its active file = nil, want error")
				}
			}
		})
	}
}

// TestRewrittenChainIsNotDetected documents the limit of an unkeyed chain:
// an attacker who rewrites every later record and the head goes unseen.
func TestRewrittenChainIsNotDetected(t *testing.T) {
	dir := newTrail(t, 5, 0)
	path := filepath.Join(dir, fileName(1))
	lines := readLines(t, path)
	prev := lineHash(bytes.TrimSuffix(lines[1], []byte{'\n'}))
	for i := 2; i < 5; i++ {
		var r Record
		if err := json.Unmarshal(lines[i], &r); err != nil {
			t.Fatal(err)
		}
		r.Agent, r.Prev = "forged", prev
		b, _ := json.Marshal(r)
		lines[i] = append(b, '\n')
		prev = lineHash(b)
	}
	writeLines(t, path, lines)
	if err := os.WriteFile(filepath.Join(dir, headName), head{seq: 5, hash: prev}.encode(), 0o600); err != nil {
		t.Fatal(err)
	}
	mustVerify(t, dir)
}

func TestOpenRecoversTornLine(t *testing.T) {
	dir := newTrail(t, 5, 0)
	path := filepath.Join(dir, fileName(1))
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	torn := []byte(`{"seq":6,"time":"2026-11-23T12:00:06Z","prev":"ab`)
	if _, err := f.Write(torn); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if res := mustVerify(t, dir); res.Records != 5 || res.Pending != int64(len(torn)) {
		t.Errorf("Verify of a torn trail = %+v, want 5 records and %d pending bytes", res, len(torn))
	}
	l := openLog(t, dir, Options{NoSync: true})
	appendN(t, l, 1)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if res := mustVerify(t, dir); res.Records != 7 {
		t.Errorf("Verify = %+v, want 7 records", res)
	}
	var got Record
	if err := json.Unmarshal(readLines(t, path)[5], &got); err != nil {
		t.Fatal(err)
	}
	if got.Seq != 6 || got.Event != EventRecovered || got.Detail["torn_bytes"] != fmt.Sprint(len(torn)) {
		t.Errorf("record 6 = %+v, want audit_recovered with torn_bytes %d", got, len(torn))
	}
}

func TestOpenRecoversTornLineAfterRotation(t *testing.T) {
	dir := newTrail(t, 4, 1) // one record per file
	torn := []byte(`{"seq":5,"ti`)
	if err := os.WriteFile(filepath.Join(dir, fileName(5)), torn, 0o600); err != nil {
		t.Fatal(err)
	}
	l := openLog(t, dir, Options{MaxFileBytes: 1, NoSync: true})
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	res := mustVerify(t, dir)
	if res.Records != 5 || res.Files != 5 || res.Pending != 0 {
		t.Errorf("Verify = %+v, want 5 records in 5 files, nothing pending", res)
	}
}

func TestOpenRefusesCorruptCompleteLine(t *testing.T) {
	dir := newTrail(t, 5, 0)
	f, err := os.OpenFile(filepath.Join(dir, fileName(1)), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte("{not json}\n"))
	f.Close()
	l, err := Open(dir, Options{NoSync: true})
	var be *BreakError
	if !errors.As(err, &be) || be.Line != 6 {
		if l != nil {
			l.Close()
		}
		t.Fatalf("Open = %v, want a *BreakError at line 6", err)
	}
}

func TestOpenRepairsLaggingHead(t *testing.T) {
	// A crash between a record and its head update lags the head by one;
	// a power loss can lose several unsynced head updates.
	for _, lag := range []int{1, 3} {
		t.Run(fmt.Sprintf("lag %d", lag), func(t *testing.T) {
			dir := newTrail(t, 5, 0)
			lines := readLines(t, filepath.Join(dir, fileName(1)))
			old := head{seq: uint64(5 - lag), hash: lineHash(bytes.TrimSuffix(lines[4-lag], []byte{'\n'}))}
			if err := os.WriteFile(filepath.Join(dir, headName), old.encode(), 0o600); err != nil {
				t.Fatal(err)
			}
			if res := mustVerify(t, dir); res.Unanchored != lag {
				t.Errorf("Verify = %+v, want %d unanchored records", res, lag)
			}
			l := openLog(t, dir, Options{NoSync: true})
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			if res := mustVerify(t, dir); res.Records != 6 || res.Unanchored != 0 {
				t.Errorf("Verify after Open = %+v, want 6 records, none unanchored", res)
			}
			var got Record
			json.Unmarshal(readLines(t, filepath.Join(dir, fileName(1)))[5], &got)
			if got.Event != EventRecovered || got.Detail["head_lag"] != fmt.Sprint(lag) {
				t.Errorf("record 6 = %+v, want audit_recovered with head_lag %d", got, lag)
			}
		})
	}
}

func FuzzVerify(f *testing.F) {
	good := newTrail(f, 3, 0)
	data, _ := os.ReadFile(filepath.Join(good, fileName(1)))
	hd, _ := os.ReadFile(filepath.Join(good, headName))
	f.Add(data, hd)
	f.Add(data[:len(data)-7], hd)
	f.Add([]byte("{}\n{\"seq\":1}\n"), []byte{})
	f.Add([]byte{}, []byte{})
	f.Fuzz(func(t *testing.T, content, headContent []byte) {
		dir := filepath.Join(t.TempDir(), "audit")
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, fileName(1)), content, 0o600)
		if len(headContent) > 0 {
			os.WriteFile(filepath.Join(dir, headName), headContent, 0o600)
		}
		_, verr := Verify(dir)
		Read(dir, Filter{}, func(Record) error { return nil })
		l, err := Open(dir, Options{NoSync: true})
		if err != nil {
			if verr == nil {
				t.Fatalf("Verify = nil but Open = %v", err)
			}
			return
		}
		defer l.Close()
		if verr != nil {
			return
		}
		if _, err := l.Append(Record{Event: EventDaemonStart}); err != nil {
			t.Fatalf("Append = %v", err)
		}
		if _, err := Verify(dir); err != nil {
			t.Fatalf("Verify after Append to a good trail = %v", err)
		}
	})
}

func TestHeadRoundTrip(t *testing.T) {
	dir := t.TempDir()
	for _, h := range []head{{0, genesis}, {42, lineHash([]byte("x"))}, {^uint64(0), lineHash(nil)}} {
		b := h.encode()
		if len(b) != headLen {
			t.Errorf("len(encode(%d)) = %d, want %d", h.seq, len(b), headLen)
		}
		os.WriteFile(filepath.Join(dir, headName), b, 0o600)
		if got, err := readHead(dir); err != nil || got != h {
			t.Errorf("readHead(encode(%v)) = %v, %v", h, got, err)
		}
	}
	for _, bad := range []string{"x", string(head{7, genesis}.encode()[1:]) + "\n", strings.Replace(string(head{7, genesis}.encode()), "0", "g", 40)} {
		os.WriteFile(filepath.Join(dir, headName), []byte(bad), 0o600)
		var be *BreakError
		if _, err := readHead(dir); !errors.As(err, &be) {
			t.Errorf("readHead(%q) = %v, want a *BreakError", bad, err)
		}
	}
}

func TestOpenRefusesHeadNamingAnotherRecord(t *testing.T) {
	dir := newTrail(t, 5, 0)
	wrong := head{seq: 3, hash: lineHash([]byte("not record 3"))}
	if err := os.WriteFile(filepath.Join(dir, headName), wrong.encode(), 0o600); err != nil {
		t.Fatal(err)
	}
	var be *BreakError
	if _, err := Verify(dir); !errors.As(err, &be) || be.Seq != 3 || be.Line != 3 {
		t.Errorf("Verify = %v, want a break at line 3 seq 3", err)
	}
	l, err := Open(dir, Options{NoSync: true})
	if !errors.As(err, &be) {
		if l != nil {
			l.Close()
		}
		t.Errorf("Open = %v, want a *BreakError", err)
	}
}
