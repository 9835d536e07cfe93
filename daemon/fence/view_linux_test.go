package fence

import (
	"reflect"
	"testing"
)

func TestLayersShallowestFirstKeptWins(t *testing.T) {
	kept := []heldPath{{path: "/tmp/home"}, {path: "/tmp/home/run/work"}, {path: "/tmp"}}
	got := []string{}
	for _, l := range layers([]string{"/tmp", "/tmp/home/run", "/run"}, kept) {
		kind := "scratch"
		if l.keep != nil {
			kind = "keep"
		}
		got = append(got, kind+" "+l.path)
	}
	want := []string{"scratch /tmp", "scratch /run", "keep /tmp", "keep /tmp/home", "scratch /tmp/home/run", "keep /tmp/home/run/work"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("layers = %v\nwant %v", got, want)
	}
}
