package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"
)

func statusCommand() *cli.Command {
	return &cli.Command{
		Name:      "status",
		Usage:     "show whether the daemon runs, where, and which keys it has",
		UsageText: "tokfence status [--json]\n\nExample:\n   tokfence status --json",
		Flags:     []cli.Flag{&cli.BoolFlag{Name: "json", Usage: "print JSON"}},
		Action:    runStatus,
	}
}

func runStatus(c *cli.Context) error {
	cl, err := client(c)
	if err != nil {
		return err
	}
	st, err := cl.Status(c.Context)
	if err != nil {
		return err
	}
	if c.Bool("json") {
		enc := json.NewEncoder(c.App.Writer)
		enc.SetIndent("", "  ")
		return enc.Encode(st)
	}
	tw := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
	keys := strings.Join(st.Keys, ", ")
	if keys == "" {
		keys = "(none: add one with `tokfence key set PROVIDER`)"
	}
	rows := [][2]string{
		{"daemon", fmt.Sprintf("running (pid %d, version %s, up %s)", st.PID, st.Version, time.Since(st.Started).Round(time.Second))},
		{"socket", st.Socket},
		{"uid policy", fmt.Sprintf("%s (uid %d)", st.UIDPolicy, st.UID)},
		{"mode", map[bool]string{true: "strict (a capability token on every request)", false: "NON-STRICT (weaker: untokened socket requests are served)"}[st.Strict]},
		{"keychain", st.Keychain},
		{"keys", keys},
	}
	if len(st.MissingKeys) > 0 {
		rows = append(rows, [2]string{"missing keys", strings.Join(st.MissingKeys, ", ") +
			" (in the key index but not in the keychain, so requests for them fail: `tokfence key ls` says why; `tokfence key set PROVIDER` stores one again)"})
	}
	rows = append(rows, [2]string{"state dir", st.StateDir})
	if st.TCP != "" {
		rows = append(rows, [2]string{"tcp", st.TCP})
	}
	sessions := fmt.Sprint(st.Sessions)
	if st.Unfenced > 0 {
		sessions += fmt.Sprintf(" (%d UNFENCED: their agents can reach the keychain, the control socket and the network)", st.Unfenced)
	}
	rows = append(rows, [2]string{"sessions", sessions}, [2]string{"policy", st.Policy}, [2]string{"prices", st.Prices})
	if st.PolicyError != "" {
		rows = append(rows, [2]string{"policy error", st.PolicyError + " (the previous policy stays in force)"})
	}
	for _, r := range rows {
		fmt.Fprintf(tw, "%s:\t%s\n", r[0], r[1])
	}
	return tw.Flush()
}
