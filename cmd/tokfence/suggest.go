package main

import (
	"fmt"
	"slices"
	"strings"

	"github.com/urfave/cli/v2"
)

// usageError is a mistake on the command line (an unknown command or
// flag, a missing required flag). It exits 2, as flag and getopt programs
// do, and its hint names the help to read; the help itself is not dumped,
// so the error is the last thing on the screen.
type usageError struct {
	msg  string
	hint string
}

func (e *usageError) Error() string { return e.msg }
func (e *usageError) Hint() string  { return e.hint }
func (e *usageError) ExitCode() int { return 2 }

func helpHint(path string) string { return fmt.Sprintf("see `%s --help`", path) }

// guardCommands gives every command of app, at every depth, the CLI's
// answers to mistakes: an unknown command gets a did-you-mean, a bad or
// missing flag one line naming the help to read, never the whole help.
// It relies on a rule of this command tree: a command with subcommands
// takes no arguments of its own, so a word after it is a subcommand or a
// typo (`tokfence audit verfy` must not silently run `tokfence audit`).
func guardCommands(app *cli.App) {
	app.OnUsageError = onUsageError(app.Name)
	app.Action = dispatch(app.Name, app.Commands, nil, cli.ShowAppHelp)
	app.HideHelpCommand = true // ours, helpCommand, takes paths and suggests
	app.Flags = append(app.Flags, cli.HelpFlag)
	guardSubcommands(app.Commands, app.Name, 0)
}

func guardSubcommands(cmds []*cli.Command, parent string, depth int) {
	for _, cmd := range cmds {
		path := parent + " " + cmd.Name
		if depth > 0 {
			cmd.HelpName = path // the top level gets it from App.Setup
		}
		cmd.OnUsageError = onUsageError(path)
		cmd.HideHelpCommand = true
		if !slices.ContainsFunc(cmd.Flags, func(f cli.Flag) bool { return f == cli.HelpFlag }) {
			cmd.Flags = append(cmd.Flags, cli.HelpFlag)
		}
		requireFlags(cmd, path)
		if len(cmd.Subcommands) > 0 {
			cmd.Action = dispatch(path, cmd.Subcommands, cmd.Action, cli.ShowSubcommandHelp)
			guardSubcommands(cmd.Subcommands, path, depth+1)
		}
	}
}

// dispatch is the action of a command with subcommands, reached when none
// was named: `help` shows the help, any other word is an unknown command,
// and no word runs the command's own action or shows its help.
func dispatch(path string, subs []*cli.Command, own cli.ActionFunc, help cli.ActionFunc) cli.ActionFunc {
	return func(c *cli.Context) error {
		switch {
		case c.Args().First() == "help" && c.NArg() == 1:
			return help(c)
		case c.NArg() > 0:
			return unknownCommand(path, c.Args().First(), subs)
		case own != nil:
			return own(c)
		}
		return help(c)
	}
}

// unknownCommand is the error for word, which names none of subs.
func unknownCommand(path, word string, subs []*cli.Command) error {
	var names [][]string
	for _, s := range subs {
		if !s.Hidden {
			names = append(names, s.Names())
		}
	}
	msg := fmt.Sprintf("unknown command %q for %q", word, path)
	if m := closest(word, names); len(m) > 0 {
		msg += "; did you mean " + quoteOr(m) + "?"
	}
	return &usageError{msg: msg, hint: helpHint(path) + " for the list of commands"}
}

// onUsageError turns urfave/cli's flag errors into one line with a hint.
func onUsageError(path string) cli.OnUsageErrorFunc {
	return func(c *cli.Context, err error, _ bool) error {
		msg := err.Error()
		if name, ok := strings.CutPrefix(msg, "flag provided but not defined: "); ok {
			name = strings.TrimLeft(name, "-")
			msg = fmt.Sprintf("unknown flag %s for %q", dashed(name), path)
			if m := closest(name, flagNames(c.Command.VisibleFlags())); len(m) > 0 {
				for i := range m {
					m[i] = dashed(m[i])
				}
				msg += "; did you mean " + strings.Join(m, " or ") + "?"
			}
		}
		return &usageError{msg: msg, hint: helpHint(path)}
	}
}

// requireFlags checks cmd's required flags itself: urfave/cli answers a
// missing one by printing the command's whole help before the error.
func requireFlags(cmd *cli.Command, path string) {
	var names []string
	for _, f := range cmd.Flags {
		switch f := f.(type) {
		case *cli.StringFlag:
			if f.Required {
				f.Required, f.Usage, names = false, f.Usage+" (required)", append(names, f.Name)
			}
		case *cli.StringSliceFlag:
			if f.Required {
				f.Required, f.Usage, names = false, f.Usage+" (required)", append(names, f.Name)
			}
		}
	}
	if len(names) == 0 {
		return
	}
	before := cmd.Before
	cmd.Before = func(c *cli.Context) error {
		var missing []string
		for _, n := range names {
			if !c.IsSet(n) {
				missing = append(missing, dashed(n))
			}
		}
		if len(missing) > 0 {
			return &usageError{msg: fmt.Sprintf("%s needs %s", path, strings.Join(missing, " and ")), hint: helpHint(path)}
		}
		if before != nil {
			return before(c)
		}
		return nil
	}
}

func flagNames(flags []cli.Flag) [][]string {
	out := make([][]string, 0, len(flags))
	for _, f := range flags {
		out = append(out, f.Names())
	}
	return out
}

func dashed(name string) string {
	if len(name) == 1 {
		return "-" + name
	}
	return "--" + name
}

func quoteOr(words []string) string {
	q := make([]string, len(words))
	for i, w := range words {
		q[i] = fmt.Sprintf("%q", w)
	}
	return strings.Join(q, " or ")
}

// closest returns the names (the first name of each group one of whose
// names matched) nearest to word: those at the smallest edit distance, if
// it is small enough to be a typo, else those that word begins. At most
// three, and none when nothing is close.
func closest(word string, groups [][]string) []string {
	word = strings.ToLower(word)
	limit := 2 // a typo in a word of 4 letters or more: "sesions", "stauts"
	if len(word) <= 3 {
		limit = 1 // "kil" is kill, but "rm" is not ls
	}
	var best, prefixed []string
	bestD := limit + 1
	for _, g := range groups {
		d, prefix := bestD+1, false
		for _, n := range g {
			n = strings.ToLower(n)
			d = min(d, editDistance(word, n))
			prefix = prefix || len(word) >= 2 && strings.HasPrefix(n, word)
		}
		switch {
		case d < bestD:
			best, bestD = []string{g[0]}, d
		case d == bestD && d <= limit:
			best = append(best, g[0])
		}
		if prefix {
			prefixed = append(prefixed, g[0])
		}
	}
	if len(best) == 0 {
		best = prefixed
	}
	if len(best) > 3 {
		return nil // "did you mean" five things helps no one
	}
	return best
}

// editDistance is the optimal-string-alignment distance between a and b:
// insertions, deletions, substitutions and swaps of neighbours each cost
// one, so "stauts" is one step from "status".
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	// d[i][j] is the distance between ra[:i] and rb[:j]; rows i-2 and i-1
	// are all a swap needs.
	prev2, prev, cur := make([]int, len(rb)+1), make([]int, len(rb)+1), make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(rb)]
}
