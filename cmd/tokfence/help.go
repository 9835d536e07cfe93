package main

import (
	"github.com/urfave/cli/v2"
)

// helpCommand replaces urfave/cli's help command, which knows only one
// level and answers a typo with "No help topic": this one takes a command
// path and suggests like every other command.
func helpCommand() *cli.Command {
	return &cli.Command{
		Name:      "help",
		Usage:     "show the help of a command (the same as COMMAND --help)",
		UsageText: "tokfence help [COMMAND [SUBCOMMAND]]\n\nExamples:\n   tokfence help\n   tokfence help key set",
		Action:    runHelp,
	}
}

func runHelp(c *cli.Context) error {
	if c.NArg() == 0 {
		return cli.ShowAppHelp(c)
	}
	path, cmds := c.App.Name, c.App.Commands
	var cmd *cli.Command
	for _, word := range c.Args().Slice() {
		next := findCommand(cmds, word)
		if next == nil {
			return unknownCommand(path, word, cmds)
		}
		cmd, cmds, path = next, next.Subcommands, path+" "+next.Name
	}
	templ := cli.CommandHelpTemplate
	if len(cmd.Subcommands) > 0 {
		templ = cli.SubcommandHelpTemplate
	}
	cli.HelpPrinter(c.App.Writer, templ, cmd)
	return nil
}

func findCommand(cmds []*cli.Command, name string) *cli.Command {
	for _, c := range cmds {
		if c.HasName(name) && !c.Hidden {
			return c
		}
	}
	return nil
}

// walkCommands calls f for every visible command of app, at every depth,
// with its full path ("tokfence key set").
func walkCommands(app *cli.App, f func(path string, cmd *cli.Command)) {
	var walk func(parent string, cmds []*cli.Command)
	walk = func(parent string, cmds []*cli.Command) {
		for _, cmd := range cmds {
			if cmd.Hidden {
				continue
			}
			path := parent + " " + cmd.Name
			f(path, cmd)
			walk(path, cmd.Subcommands)
		}
	}
	walk(app.Name, app.Commands)
}
