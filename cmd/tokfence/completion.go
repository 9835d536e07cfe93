package main

import (
	"fmt"
	"slices"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/tokfence/tokfence/daemon"
)

// shells are the shells `tokfence completion` writes a script for.
var shells = []string{"bash", "zsh", "fish"}

func completionCommand() *cli.Command {
	return &cli.Command{
		Name:  "completion",
		Usage: "print a shell completion script (bash, zsh or fish), generated from this binary's commands",
		UsageText: "tokfence completion bash|zsh|fish\n\n" +
			"The script completes commands, subcommands, flags, flag values and provider\n" +
			"names. `make install` installs all three; by hand:\n\nExamples:\n" +
			"   source <(tokfence completion bash)                    # this shell only\n" +
			"   tokfence completion bash > ~/.local/share/bash-completion/completions/tokfence\n" +
			"   tokfence completion zsh > \"${fpath[1]}/_tokfence\"     # then restart zsh\n" +
			"   tokfence completion fish > ~/.config/fish/completions/tokfence.fish",
		Action: runCompletion,
	}
}

func runCompletion(c *cli.Context) error {
	if c.NArg() != 1 || !slices.Contains(shells, c.Args().First()) {
		return &usageError{msg: "name one shell: bash, zsh or fish", hint: helpHint("tokfence completion")}
	}
	nodes := completionTree(c.App)
	var script string
	switch c.Args().First() {
	case "bash":
		script = bashCompletion(nodes)
	case "zsh":
		script = zshCompletion(nodes)
	case "fish":
		script = fishCompletion(nodes)
	}
	_, err := fmt.Fprint(c.App.Writer, script)
	return err
}

// compNode is one command as the completion scripts see it; the scripts
// are generated from these, so they cannot drift from the commands.
type compNode struct {
	Path  string   // "tokfence key set"
	Usage string   // one line
	Names []string // the command's name and aliases
	Subs  []*compNode
	Flags []compFlag
	Args  compValues // what an argument completes to
	Rest  bool       // after "--" comes a command line of its own (exec)
}

type compFlag struct {
	Names []string // "--follow", "-f"
	Usage string
	Value *compValues // nil: a switch, taking no value
}

// compValues is what a flag value or an argument completes to.
type compValues struct {
	Words []string
	Files bool
}

// flagValues are the values of the flags that take one of a few words.
// TestCompletionFlagValues checks that each names a flag that exists.
var flagValues = map[string][]string{
	"by":        {"agent", "session", "provider", "model"},
	"format":    {"token", "env", "json"},
	"log-level": {"debug", "info", "warn", "error"},
}

// argValues is what the arguments of a command complete to, for those
// whose arguments are not free text. TestCompletionArgs checks each path.
func argValues(path string, app *cli.App) compValues {
	switch path {
	case "tokfence key set", "tokfence key rm":
		ps, err := daemon.BuildProviders(nil)
		if err != nil {
			return compValues{}
		}
		return compValues{Words: ps.Names()}
	case "tokfence completion":
		return compValues{Words: shells}
	case "tokfence help":
		var names []string
		for _, c := range app.Commands {
			if !c.Hidden {
				names = append(names, c.Name)
			}
		}
		return compValues{Words: names}
	case "tokfence policy check", "tokfence scan":
		return compValues{Files: true}
	}
	return compValues{}
}

// completionTree is app's command tree, root first, then depth first.
func completionTree(app *cli.App) []*compNode {
	app.Setup() // adds --help and --version; done once per App
	root := &compNode{Path: app.Name, Usage: app.Usage, Names: []string{app.Name}, Flags: compFlags(app.VisibleFlags())}
	nodes := []*compNode{root}
	var walk func(parent *compNode, cmds []*cli.Command)
	walk = func(parent *compNode, cmds []*cli.Command) {
		for _, cmd := range cmds {
			if cmd.Hidden {
				continue
			}
			n := &compNode{Path: parent.Path + " " + cmd.Name, Usage: cmd.Usage, Names: cmd.Names(), Flags: compFlags(cmd.VisibleFlags())}
			n.Args = argValues(n.Path, app)
			n.Rest = n.Path == "tokfence exec"
			parent.Subs = append(parent.Subs, n)
			nodes = append(nodes, n)
			walk(n, cmd.Subcommands)
		}
	}
	walk(root, app.Commands)
	return nodes
}

func compFlags(flags []cli.Flag) []compFlag {
	out := make([]compFlag, 0, len(flags))
	for _, f := range flags {
		cf := compFlag{}
		for _, n := range f.Names() {
			cf.Names = append(cf.Names, dashed(n))
		}
		df, ok := f.(cli.DocGenerationFlag)
		if ok {
			placeholder, usage := unquoteUsage(df.GetUsage())
			cf.Usage = usage
			if df.TakesValue() {
				v := &compValues{Words: flagValues[f.Names()[0]]}
				v.Files = v.Words == nil && slices.Contains([]string{"FILE", "PATH", "DIR"}, placeholder)
				cf.Value = v
			}
		}
		out = append(out, cf)
	}
	return out
}

// unquoteUsage splits a flag usage into its `PLACEHOLDER` and the usage
// without the backquotes, as urfave/cli prints it.
func unquoteUsage(usage string) (string, string) {
	before, rest, ok := strings.Cut(usage, "`")
	if !ok {
		return "", usage
	}
	name, after, ok := strings.Cut(rest, "`")
	if !ok {
		return "", usage
	}
	return name, before + name + after
}

// valueFlags lists, for n, the names of its flags that take a value: the
// scripts skip a flag's value when they find where the cursor is.
func (n *compNode) valueFlags() []string {
	var out []string
	for _, f := range n.Flags {
		if f.Value != nil {
			out = append(out, f.Names...)
		}
	}
	return out
}

// shellQuoteAll single-quotes each word for POSIX shells and fish.
func shellQuoteAll(words []string) string {
	q := make([]string, len(words))
	for i, w := range words {
		q[i] = shellQuote(w)
	}
	return strings.Join(q, " ")
}
