package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/tokfence/tokfence/daemon/api"
	"github.com/urfave/cli/v2"
)

func killCommand() *cli.Command {
	return &cli.Command{
		Name:  "kill",
		Usage: "revoke a session, an agent's sessions, or all sessions, at once and for good",
		UsageText: "tokfence kill [--json] SESSION_ID | --agent NAME | --all\n\nExamples:\n" +
			"   tokfence kill 3f2a9c0d5e6b7a8190a1b2c3d4e5f607\n   tokfence kill --agent coder\n   tokfence kill --all --json",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "agent", Usage: "kill every session of agent `NAME`"},
			&cli.BoolFlag{Name: "all", Usage: "kill every session, including ones this daemon has not seen since a restart"},
			&cli.BoolFlag{Name: "json", Usage: "print JSON: the killed session ids (and, for --all, the new epoch)"},
		},
		Action: runKill,
	}
}

func runKill(c *cli.Context) error {
	req := api.KillRequest{Session: c.Args().First(), Agent: c.String("agent"), All: c.Bool("all")}
	n := 0
	for _, set := range []bool{req.Session != "", req.Agent != "", req.All} {
		if set {
			n++
		}
	}
	if n != 1 || c.NArg() > 1 {
		return withHint(errors.New("name exactly one of SESSION_ID, --agent NAME or --all"), "see `tokfence sessions` for ids")
	}
	cl, err := client(c)
	if err != nil {
		return err
	}
	res, err := cl.Kill(c.Context, req)
	if err != nil {
		return err
	}
	if c.Bool("json") {
		if res.Killed == nil {
			res.Killed = []string{} // [] rather than null: no session matched
		}
		enc := json.NewEncoder(c.App.Writer)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	}
	if req.All {
		fmt.Fprintf(c.App.Writer, "killed all sessions (%d live); every token issued before now is dead\n", len(res.Killed))
		return nil
	}
	fmt.Fprintf(c.App.Writer, "killed %s\n", strings.Join(res.Killed, " "))
	return nil
}
