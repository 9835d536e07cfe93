package audit

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// filterTrail writes a small trail over several files with known sessions,
// agents and events; record n is stamped t0 + n seconds.
func filterTrail(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "audit")
	l := openLog(t, dir, Options{MaxFileBytes: 300, NoSync: true})
	recs := []Record{
		{Event: EventDaemonStart},
		{Event: EventGrant, Session: "s1", Agent: "coder"},
		{Event: EventRequest, Session: "s1", Agent: "coder"},
		{Event: EventGrant, Session: "s2", Agent: "writer"},
		{Event: EventSensorHit, Session: "s1", Agent: "coder", Rule: "openai_key", Encoding: "base64"},
		{Event: EventRequest, Session: "s2", Agent: "writer"},
		{Event: EventKill, Session: "s1", Agent: "coder"},
	}
	for _, r := range recs {
		if _, err := l.Append(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestRead(t *testing.T) {
	dir := filterTrail(t)
	if res := mustVerify(t, dir); res.Files < 2 {
		t.Fatalf("Verify = %+v, want the trail over several files", res)
	}
	tests := []struct {
		name   string
		filter Filter
		want   []uint64
	}{
		{"everything", Filter{}, []uint64{1, 2, 3, 4, 5, 6, 7}},
		{"one session", Filter{Session: "s1"}, []uint64{2, 3, 5, 7}},
		{"one agent", Filter{Agent: "writer"}, []uint64{4, 6}},
		{"one event", Filter{Event: EventRequest}, []uint64{3, 6}},
		{"since a time", Filter{Since: t0.Add(5 * time.Second)}, []uint64{5, 6, 7}},
		{"fields combine", Filter{Session: "s1", Event: EventGrant}, []uint64{2}},
		{"nothing matches", Filter{Agent: "nobody"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []uint64
			err := Read(dir, tt.filter, func(r Record) error {
				got = append(got, r.Seq)
				return nil
			})
			if err != nil || !slices.Equal(got, tt.want) {
				t.Errorf("Read(%+v) = %v, %v; want %v", tt.filter, got, err, tt.want)
			}
		})
	}
}

func TestReadStopsOnCallbackError(t *testing.T) {
	dir := filterTrail(t)
	stop := errors.New("stop")
	n := 0
	err := Read(dir, Filter{}, func(Record) error {
		n++
		return stop
	})
	if !errors.Is(err, stop) || n != 1 {
		t.Errorf("Read = %v after %d records, want stop after 1", err, n)
	}
}

func TestReadSkipsAppendInProgress(t *testing.T) {
	dir := newTrail(t, 3, 0)
	f, err := os.OpenFile(filepath.Join(dir, fileName(1)), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte(`{"seq":4,`))
	f.Close()
	n := 0
	if err := Read(dir, Filter{}, func(Record) error { n++; return nil }); err != nil || n != 3 {
		t.Errorf("Read = %v after %d records, want nil after 3", err, n)
	}
}

func TestFollowSeesNewRecordsAcrossRotation(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "audit")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got := make(chan Record, 100)
	done := make(chan error, 1)
	go func() {
		done <- Follow(ctx, dir, Filter{Event: EventRequest}, func(r Record) error {
			got <- r
			return nil
		})
	}()
	l := openLog(t, dir, Options{MaxFileBytes: 600, NoSync: true})
	defer l.Close()
	l.Append(Record{Event: EventDaemonStart}) // filtered out
	appendN(t, l, 5)
	want := uint64(2)
	timeout := time.After(10 * time.Second)
	for want <= 6 {
		select {
		case r := <-got:
			if r.Seq != want {
				t.Fatalf("Follow delivered seq %d, want %d", r.Seq, want)
			}
			want++
		case <-timeout:
			t.Fatalf("Follow delivered up to seq %d within 10s, want 6", want-1)
		}
		if want == 4 {
			appendN(t, l, 4) // written while Follow is already tailing
		}
	}
	for want <= 10 {
		select {
		case r := <-got:
			if r.Seq != want {
				t.Fatalf("Follow delivered seq %d, want %d", r.Seq, want)
			}
			want++
		case <-timeout:
			t.Fatalf("Follow delivered up to seq %d within 10s, want 10", want-1)
		}
	}
	if res := mustVerify(t, dir); res.Files < 3 {
		t.Errorf("Verify = %+v, want Follow to have crossed several files", res)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Follow after cancel = %v, want nil", err)
	}
}

func TestFollowFromEndDeliversOnlyNewRecords(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "audit")
	if pos, err := End(dir); err != nil || pos != (Position{}) {
		t.Fatalf("End of a trail not yet created = %+v, %v; want the zero Position", pos, err)
	}
	l := openLog(t, dir, Options{MaxFileBytes: 600, NoSync: true})
	defer l.Close()
	appendN(t, l, 5) // seq 1..5, over more than one file
	end, err := End(dir)
	if err != nil {
		t.Fatal(err)
	}
	read, err := ReadTo(dir, Filter{}, func(Record) error { return nil })
	if err != nil || read != end || end.File < 2 {
		t.Fatalf("End = %+v, ReadTo = %+v, %v; want the same place, past the first file", end, read, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got := make(chan Record, 100)
	done := make(chan error, 1)
	go func() {
		done <- FollowFrom(ctx, dir, end, Filter{}, func(r Record) error { got <- r; return nil })
	}()
	appendN(t, l, 6) // seq 6..11, rotating on the way
	timeout := time.After(10 * time.Second)
	for want := uint64(6); want <= 11; want++ {
		select {
		case r := <-got:
			if r.Seq != want {
				t.Fatalf("FollowFrom(End) delivered seq %d, want %d (nothing written before End)", r.Seq, want)
			}
		case <-timeout:
			t.Fatalf("FollowFrom(End) delivered up to seq %d within 10s, want 11", want-1)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("FollowFrom after cancel = %v, want nil", err)
	}
}
