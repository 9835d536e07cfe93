package main

import (
	"fmt"
	"slices"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/tokfence/tokfence/daemon"
)

func manCommand() *cli.Command {
	return &cli.Command{
		Name:  "man",
		Usage: "print the manual page (roff), generated from this binary's commands",
		UsageText: "tokfence man\n\n`make install` installs it as tokfence(1).\n\nExamples:\n" +
			"   tokfence man | man -l -\n   tokfence man > ~/.local/share/man/man1/tokfence.1",
		Action: runMan,
	}
}

func runMan(c *cli.Context) error {
	if c.NArg() > 0 {
		return &usageError{msg: "man takes no arguments", hint: helpHint("tokfence man")}
	}
	_, err := fmt.Fprint(c.App.Writer, manPage(c.App))
	return err
}

// manPage renders app as a man page in section 1: the synopsis, the
// description, the global options once, then every command, at every
// depth, with its usage, examples and own options. It is plain man(7)
// roff, which groff and mandoc both read.
func manPage(app *cli.App) string {
	var b strings.Builder
	fmt.Fprintf(&b, ".TH TOKFENCE 1 \"\" \"tokfence %s\" \"User Commands\"\n", roff(daemon.Version))
	fmt.Fprintf(&b, ".SH NAME\ntokfence \\- %s\n", roff(app.Usage))
	b.WriteString(".SH SYNOPSIS\n.B tokfence\n[\\fIGLOBAL OPTIONS\\fR] \\fICOMMAND\\fR [\\fIOPTIONS\\fR] [\\fIARGUMENTS\\fR...]\n")
	b.WriteString(".SH DESCRIPTION\n")
	manText(&b, app.Description)
	b.WriteString(".PP\nEvery command takes \\fB\\-\\-help\\fR. A mistake on the command line (an unknown command or flag,\n" +
		"a missing required flag) exits 2; other errors exit 1, and print a line starting \\fBtokfence: hint:\\fR\nthat names the fix.\n")
	b.WriteString(".SH GLOBAL OPTIONS\nThese are accepted before the command and after it.\n")
	global := map[string]bool{}
	for _, f := range globalFlags() {
		global[f.Names()[0]] = true
		manFlag(&b, f)
	}
	b.WriteString(".SH COMMANDS\n")
	walkCommands(app, func(path string, cmd *cli.Command) {
		fmt.Fprintf(&b, ".SS \"%s\"\n%s\n", roff(path), roff(cmd.Usage))
		manText(&b, cmd.UsageText)
		manText(&b, cmd.Description)
		own := slices.DeleteFunc(slices.Clone(cmd.Flags), func(f cli.Flag) bool {
			return global[f.Names()[0]] || f == cli.HelpFlag
		})
		if len(own) > 0 {
			b.WriteString(".PP\nOptions:\n")
			for _, f := range own {
				manFlag(&b, f)
			}
		}
	})
	b.WriteString(`.SH FILES
.TP
.I $XDG_RUNTIME_DIR/tokfence/tokfence.sock
the daemon's control socket (in a 0700 directory)
.TP
.I $XDG_CONFIG_HOME/tokfence/config.toml
the config file; the daemon needs none
.TP
.I $XDG_STATE_HOME/tokfence/
state: install id, revocations, sessions, the provider index and the audit trail
.SH SEE ALSO
.BR ssh\-agent (1),
.BR systemctl (1);
the README, which has every setting:
.UR https://github.com/tokfence/tokfence
.UE
`)
	return b.String()
}

// manFlag writes one option as a tagged paragraph.
func manFlag(b *strings.Builder, f cli.Flag) {
	var names []string
	for _, n := range f.Names() {
		names = append(names, `\fB`+roff(dashed(n))+`\fR`)
	}
	tag := strings.Join(names, ", ")
	usage := ""
	if df, ok := f.(cli.DocGenerationFlag); ok {
		placeholder, u := unquoteUsage(df.GetUsage())
		usage = u
		if df.TakesValue() {
			if placeholder == "" {
				placeholder = "value"
			}
			tag += ` \fI` + roff(placeholder) + `\fR`
		}
	}
	fmt.Fprintf(b, ".TP\n%s\n%s\n", tag, roff(usage))
}

// manText writes s, a help text, as paragraphs, keeping runs of indented
// lines (examples) and of synopsis lines ("tokfence ...") as they are.
func manText(b *strings.Builder, s string) {
	if strings.TrimSpace(s) == "" {
		return
	}
	for _, para := range strings.Split(strings.TrimSpace(s), "\n\n") {
		b.WriteString(".PP\n")
		lines := strings.Split(para, "\n")
		for len(lines) > 0 {
			verbatim := isVerbatim(lines[0])
			n := slices.IndexFunc(lines, func(l string) bool { return isVerbatim(l) != verbatim })
			if n < 0 {
				n = len(lines)
			}
			if !verbatim {
				b.WriteString(roff(strings.Join(lines[:n], "\n")) + "\n")
			} else {
				b.WriteString(".RS 4\n.nf\n")
				for _, l := range lines[:n] {
					b.WriteString(roff(strings.TrimPrefix(l, "   ")) + "\n")
				}
				b.WriteString(".fi\n.RE\n")
			}
			lines = lines[n:]
		}
	}
}

func isVerbatim(line string) bool {
	return strings.HasPrefix(line, " ") || strings.HasPrefix(line, "\t") || strings.HasPrefix(line, "tokfence ") || line == "tokfence"
}

// roff escapes text for roff: backslashes and minus signs, and a line
// that would otherwise start with a control character.
func roff(s string) string {
	s = strings.NewReplacer(`\`, `\e`, "-", `\-`, "`", `\(ga`).Replace(s)
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, ".") || strings.HasPrefix(l, "'") {
			lines[i] = `\&` + l
		}
	}
	return strings.Join(lines, "\n")
}
