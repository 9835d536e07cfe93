package main

import (
	"testing"
	"time"
)

func TestParseSince(t *testing.T) {
	now := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	local := func(y int, m time.Month, d, h, min, s, ns int) time.Time {
		return time.Date(y, m, d, h, min, s, ns, time.Local)
	}
	tests := []struct {
		name, in string
		want     time.Time
	}{
		{"empty is no bound", "", time.Time{}},
		{"minutes", "30m", now.Add(-30 * time.Minute)},
		{"hours", "2h", now.Add(-2 * time.Hour)},
		{"a Go duration", "1h30m", now.Add(-90 * time.Minute)},
		{"a day", "1d", now.Add(-24 * time.Hour)},
		{"a week", "1w", now.Add(-7 * 24 * time.Hour)},
		{"weeks, days and hours", "1w2d3h", now.Add(-(9*24 + 3) * time.Hour)},
		{"an RFC 3339 time", "2026-01-02T15:04:05Z", time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC)},
		{"an RFC 3339 time with an offset", "2026-01-02T15:04:05+02:00", time.Date(2026, 1, 2, 13, 4, 5, 0, time.UTC)},
		{"a date, local midnight", "2026-01-02", local(2026, 1, 2, 0, 0, 0, 0)},
		{"a local time as audit prints it", "2026-01-02 15:04:05.250", local(2026, 1, 2, 15, 4, 5, 250e6)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseSince(tt.in, now)
			if err != nil || !got.Equal(tt.want) {
				t.Fatalf("parseSince(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			}
		})
	}
	for _, bad := range []string{"yesterday", "12", "-1h", "0s", "1.5d", "d", "1d-2h", "2026-13-01", "99999999d"} {
		if got, err := parseSince(bad, now); err == nil {
			t.Errorf("parseSince(%q) = %v, want an error", bad, got)
		}
	}
}
