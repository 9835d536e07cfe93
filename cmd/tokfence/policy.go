package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/tokfence/tokfence/policy"
)

func policyCommand() *cli.Command {
	return &cli.Command{
		Name:      "policy",
		Usage:     "work with the policy file",
		UsageText: "tokfence policy check FILE\n\nExample:\n   tokfence policy check ~/.config/tokfence/policy.toml",
		Subcommands: []*cli.Command{{
			Name:      "check",
			Usage:     "validate a policy file, with line-numbered errors",
			UsageText: "tokfence policy check FILE\n\nExample:\n   tokfence policy check ~/.config/tokfence/policy.toml",
			Action:    runPolicyCheck,
		}},
	}
}

func runPolicyCheck(c *cli.Context) error {
	if c.NArg() != 1 {
		return &usageError{msg: "want exactly one FILE", hint: helpHint("tokfence policy check")}
	}
	p, err := policy.LoadFile(c.Args().First())
	if err != nil {
		return withHint(err, "fix the lines named above; a running daemon keeps its last good policy until the file is valid")
	}
	fmt.Fprintf(c.App.Writer, "%s: ok (sha256 %s)\n", p.Source(), p.Digest())
	return nil
}
