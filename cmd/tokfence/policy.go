package main

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/tokfence/tokfence/policy"
	"github.com/tokfence/tokfence/policy/tomlfile"
)

func policyCommand() *cli.Command {
	return &cli.Command{
		Name:      "policy",
		Usage:     "work with the policy file",
		UsageText: "tokfence policy check [--json] FILE\n\nExample:\n   tokfence policy check ~/.config/tokfence/policy.toml",
		Subcommands: []*cli.Command{{
			Name:      "check",
			Usage:     "validate a policy file, with line-numbered errors",
			UsageText: "tokfence policy check [--json] FILE\n\nExamples:\n   tokfence policy check ~/.config/tokfence/policy.toml\n   tokfence policy check --json policy.toml | jq '.errors[].line'",
			Flags:     []cli.Flag{&cli.BoolFlag{Name: "json", Usage: "print JSON: ok, the digest, or every error with its line"}},
			Action:    runPolicyCheck,
		}},
	}
}

// policyCheck is what `tokfence policy check --json` prints.
type policyCheck struct {
	File   string             `json:"file"`
	OK     bool               `json:"ok"`
	SHA256 string             `json:"sha256,omitempty"`
	Errors []policyCheckError `json:"errors,omitempty"`
}

type policyCheckError struct {
	Line    int    `json:"line,omitempty"`
	Key     string `json:"key,omitempty"`
	Message string `json:"message"`
}

func runPolicyCheck(c *cli.Context) error {
	if c.NArg() != 1 {
		return &usageError{msg: "want exactly one FILE", hint: helpHint("tokfence policy check")}
	}
	name := c.Args().First()
	p, err := policy.LoadFile(name)
	if c.Bool("json") {
		if perr := printPolicyCheck(c, name, p, err); perr != nil {
			return perr
		}
	}
	if err != nil {
		return withHint(err, "fix the lines named above; a running daemon keeps its last good policy until the file is valid")
	}
	if !c.Bool("json") {
		fmt.Fprintf(c.App.Writer, "%s: ok (sha256 %s)\n", p.Source(), p.Digest())
	}
	return nil
}

// printPolicyCheck writes the result as JSON; on error the exit status is
// still 1, and the errors also go to stderr as usual.
func printPolicyCheck(c *cli.Context, name string, p *policy.Policy, err error) error {
	out := policyCheck{File: name, OK: err == nil}
	if p != nil {
		out.File, out.SHA256 = p.Source(), p.Digest()
	}
	var es tomlfile.Errors
	switch {
	case errors.As(err, &es):
		for _, e := range es {
			out.Errors = append(out.Errors, policyCheckError{Line: e.Line, Key: e.Key, Message: e.Msg})
		}
	case err != nil:
		out.Errors = []policyCheckError{{Message: err.Error()}}
	}
	enc := json.NewEncoder(c.App.Writer)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}
