package main

import (
	"io"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

// TestEveryCommandHasAnExample walks the whole command tree: a command
// added without an example in its --help fails here, parents included
// (`tokfence key --help` once had none).
func TestEveryCommandHasAnExample(t *testing.T) {
	app := newApp(strings.NewReader(""), io.Discard, io.Discard)
	n := 0
	walkCommands(app, func(path string, cmd *cli.Command) {
		n++
		help := cmd.UsageText + "\n" + cmd.Description
		if !strings.Contains(help, "Example") || !strings.Contains(help, "\n   tokfence ") && !strings.Contains(help, "| tokfence ") {
			t.Errorf("%s --help has no example: want an \"Example(s):\" section with an indented `tokfence ...` line in UsageText or Description", path)
		}
		if !strings.HasPrefix(cmd.UsageText, path) {
			t.Errorf("%s: UsageText starts %q, want the synopsis, %q...", path, strings.SplitN(cmd.UsageText, "\n", 2)[0], path)
		}
		if cmd.Usage == "" {
			t.Errorf("%s has no Usage line", path)
		}
	})
	if n < 20 {
		t.Fatalf("walked %d commands; the walk is broken", n)
	}
}

// TestParentsTakeNoArguments holds the rule guardCommands relies on: a
// command with subcommands takes no arguments, so a word after it that
// names no subcommand is a typo.
func TestParentsTakeNoArguments(t *testing.T) {
	app := newApp(strings.NewReader(""), io.Discard, io.Discard)
	walkCommands(app, func(path string, cmd *cli.Command) {
		if len(cmd.Subcommands) == 0 {
			return
		}
		for _, l := range strings.Split(cmd.UsageText, "\n") {
			if rest, ok := strings.CutPrefix(l, path+" "); ok && !strings.HasPrefix(rest, "[") && !isSubcommandList(rest, cmd) {
				t.Errorf("%s: synopsis %q takes an argument, but the command has subcommands", path, l)
			}
		}
	})
}

func isSubcommandList(rest string, cmd *cli.Command) bool {
	first, _, _ := strings.Cut(rest, " ")
	for _, word := range strings.Split(first, "|") {
		if cmd.Command(word) == nil {
			return false
		}
	}
	return true
}

func TestClosest(t *testing.T) {
	cmds := [][]string{{"daemon"}, {"key"}, {"status"}, {"grant"}, {"renew"}, {"exec"}, {"sessions"}, {"kill"},
		{"audit"}, {"usage"}, {"policy"}, {"scan"}, {"completion"}, {"man"}, {"install-service"}, {"version"}, {"help"}}
	for _, tc := range []struct{ word, want string }{
		{"sesions", "sessions"},
		{"sessons", "sessions"},
		{"stauts", "status"},
		{"Status", "status"},
		{"kil", "kill"},
		{"kll", "kill"},
		{"grnat", "grant"},
		{"deamon", "daemon"},
		{"sess", "sessions"},
		{"install", "install-service"},
		{"compl", "completion"},
		{"ke", "key"},
		{"x", ""},
		{"zzz", ""},
		{"frobnicate", ""},
		{"", ""},
	} {
		if got := strings.Join(closest(tc.word, cmds), ","); got != tc.want {
			t.Errorf("closest(%q) = %q, want %q", tc.word, got, tc.want)
		}
	}
	if got := strings.Join(closest("rn", [][]string{{"ls"}, {"rm"}, {"set"}}), ","); got != "rm" {
		t.Errorf("closest(rn) among key's = %q, want rm", got)
	}
	if got := strings.Join(closest("mr", [][]string{{"ls"}, {"rm"}, {"set"}}), ","); got != "rm" {
		t.Errorf("closest(mr) = %q, want rm (a swap)", got)
	}
}

func TestEditDistance(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"", "", 0}, {"a", "", 1}, {"", "abc", 3}, {"kitten", "sitting", 3},
		{"stauts", "status", 1}, {"sesions", "sessions", 1}, {"ab", "ba", 1}, {"ca", "abc", 3},
	} {
		if got := editDistance(tc.a, tc.b); got != tc.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
		if got := editDistance(tc.b, tc.a); got != tc.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tc.b, tc.a, got, tc.want)
		}
	}
}
