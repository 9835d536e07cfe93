package main

import (
	"slices"
	"testing"
)

func TestParsePPID(t *testing.T) {
	for _, tc := range []struct {
		stat string
		want int
		ok   bool
	}{
		{"123 (node) S 45 123 123 0 -1", 45, true},
		{"123 (a b) c) S 7 1 1", 7, true}, // a name with spaces and a parenthesis
		{"123 node S 45", 0, false},
		{"123 (node) S", 0, false},
	} {
		got, ok := parsePPID([]byte(tc.stat))
		if got != tc.want || ok != tc.ok {
			t.Errorf("parsePPID(%q) = %d, %v; want %d, %v", tc.stat, got, ok, tc.want, tc.ok)
		}
	}
}

func TestDescendants(t *testing.T) {
	parent := map[int]int{1: 0, 10: 1, 20: 10, 21: 10, 30: 20, 40: 1}
	if got, want := descendants(parent, 10), []int{10, 20, 21, 30}; !slices.Equal(got, want) {
		t.Errorf("descendants(10) = %v, want %v", got, want)
	}
	if got, want := descendants(parent, 99), []int{99}; !slices.Equal(got, want) {
		t.Errorf("descendants(99) = %v, want %v", got, want)
	}
}
