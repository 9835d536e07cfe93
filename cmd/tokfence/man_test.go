package main

import (
	"bytes"
	"io"
	"os/exec"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

// TestManPageCoversTheTree checks that `tokfence man` has a section for
// every command, at every depth, with each of its flags, and that groff
// reads it without a warning.
func TestManPageCoversTheTree(t *testing.T) {
	out, err := exec.Command(binPath, "man").Output()
	if err != nil {
		t.Fatalf("tokfence man: %v", err)
	}
	page := string(out)
	if !strings.HasPrefix(page, ".TH TOKFENCE 1 ") {
		t.Errorf("man page starts %q, want .TH TOKFENCE 1", firstLine(page))
	}
	app := newApp(strings.NewReader(""), io.Discard, io.Discard)
	n := 0
	walkCommands(app, func(path string, cmd *cli.Command) {
		n++
		if !strings.Contains(page, ".SS \""+roff(path)+"\"\n") {
			t.Errorf("man page has no section for %q", path)
		}
		for _, f := range cmd.Flags {
			if name := `\fB` + roff(dashed(f.Names()[0])) + `\fR`; !strings.Contains(page, name) {
				t.Errorf("man page lacks %s of %q", dashed(f.Names()[0]), path)
			}
		}
	})
	if n < 20 {
		t.Fatalf("walked %d commands; the walk is broken", n)
	}
	needTool(t, "groff")
	cmd := exec.Command("groff", "-man", "-Tutf8", "-ww", "-z")
	cmd.Stdin = bytes.NewReader(out)
	if msg, err := cmd.CombinedOutput(); err != nil || len(msg) > 0 {
		t.Errorf("groff -ww on the man page: %v\n%s", err, msg)
	}
}

func TestRoffEscapes(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"--json", `\-\-json`},
		{`a\b`, `a\eb`},
		{".hidden", `\&.hidden`},
		{"x\n'quoted", "x\n\\&'quoted"},
		{"`tokfence`", `\(gatokfence\(ga`},
	} {
		if got := roff(tc.in); got != tc.want {
			t.Errorf("roff(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
