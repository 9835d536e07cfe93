// Command tokfence is the CLI and daemon of Tokfence, the secrets broker
// that AI agents run behind. main only builds the *cli.App; each subcommand
// lives in its own file.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/tokfence/tokfence/daemon"
	"github.com/tokfence/tokfence/daemon/fence"
	"github.com/tokfence/tokfence/daemon/hint"
)

func main() {
	fence.MaybeInit() // the fence's init is this binary, re-executed; it never returns
	os.Exit(run(os.Args, os.Stdin, os.Stdout, os.Stderr))
}

// run executes the CLI and returns the process exit code.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	app := newApp(stdin, stdout, stderr)
	err := app.Run(args)
	if err == nil {
		return 0
	}
	var ec cli.ExitCoder
	if errors.As(err, &ec) && ec.Error() == "" {
		return ec.ExitCode()
	}
	printError(stderr, err)
	if errors.As(err, &ec) {
		return ec.ExitCode()
	}
	return 1
}

// hinter is an error that knows how the user can fix it.
type hinter interface{ Hint() string }

// printError writes "tokfence: error: ..." and, when the error carries one,
// "tokfence: hint: ...".
func printError(w io.Writer, err error) {
	fmt.Fprintf(w, "tokfence: error: %v\n", err)
	var h hinter
	if errors.As(err, &h) && h.Hint() != "" {
		fmt.Fprintf(w, "tokfence: hint: %s\n", h.Hint())
	}
}

// withHint wraps err with a hint for the user.
func withHint(err error, fix string) error { return hint.Wrap(err, fix) }

func newApp(stdin io.Reader, stdout, stderr io.Writer) *cli.App {
	app := &cli.App{
		Name:  "tokfence",
		Usage: "the secrets broker AI agents run behind",
		Description: "Tokfence keeps provider API keys in the OS keychain and hands agents short-lived\n" +
			"capability tokens instead. Example:\n\n" +
			"   tokfence daemon &\n" +
			"   tokfence key set openai < key.txt\n" +
			"   tokfence exec --agent coder --provider openai -- my-agent",
		Version:   daemon.Version,
		Reader:    stdin,
		Writer:    stdout,
		ErrWriter: stderr,
		Flags:     globalFlags(),
		Commands: withGlobalFlags([]*cli.Command{
			daemonCommand(),
			keyCommand(),
			statusCommand(),
			grantCommand(),
			renewCommand(),
			execCommand(),
			sessionsCommand(),
			killCommand(),
			auditCommand(),
			usageCommand(),
			policyCommand(),
			scanCommand(),
			completionCommand(),
			manCommand(),
			installServiceCommand(),
			versionCommand(),
			helpCommand(),
		}),
		ExitErrHandler: func(*cli.Context, error) {}, // run prints errors
	}
	guardCommands(app)
	return app
}
