package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"
)

func sessionsCommand() *cli.Command {
	return &cli.Command{
		Name:      "sessions",
		Usage:     "list live sessions: agent, risk state, requests, expiry",
		UsageText: "tokfence sessions [--json]\n\nExample:\n   tokfence sessions",
		Flags:     []cli.Flag{&cli.BoolFlag{Name: "json", Usage: "print JSON"}},
		Action:    runSessions,
	}
}

func runSessions(c *cli.Context) error {
	cl, err := client(c)
	if err != nil {
		return err
	}
	list, err := cl.Sessions(c.Context)
	if err != nil {
		return err
	}
	if c.Bool("json") {
		enc := json.NewEncoder(c.App.Writer)
		enc.SetIndent("", "  ")
		return enc.Encode(list)
	}
	if len(list) == 0 {
		fmt.Fprintln(c.App.Writer, "no live sessions")
		return nil
	}
	tw := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SESSION\tAGENT\tFENCE\tRISK\tREQUESTS\tTOKENS\tSPEND\tEXPIRES IN\tSCOPE\tWHY")
	for _, s := range list {
		scope := strings.Join(s.Scope.Providers, ",")
		if len(s.Scope.Models) > 0 {
			scope += " models=" + strings.Join(s.Scope.Models, ",")
		}
		reqs := fmt.Sprint(s.Requests)
		if s.Scope.MaxRequests > 0 {
			reqs += fmt.Sprintf("/%d", s.Scope.MaxRequests)
		}
		spend := fmt.Sprintf("$%.4f", s.SpendUSD)
		if s.Scope.MaxSpendMicroUSD > 0 {
			spend += fmt.Sprintf("/$%.2f", float64(s.Scope.MaxSpendMicroUSD)/1e6)
		}
		if s.Unpriced > 0 {
			spend += fmt.Sprintf(" (+%d unpriced)", s.Unpriced)
		}
		fence := s.Fence
		if fence == "" {
			fence = "-" // a token minted by grant: the agent runs wherever its holder put it
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\n", s.ID, s.Agent, fence, s.Risk, reqs, s.Tokens, spend,
			time.Until(s.Expires).Round(time.Second), scope, s.RiskReason)
	}
	return tw.Flush()
}
