package main

import (
	"encoding/json"
	"fmt"
	"sort"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/tokfence/tokfence/daemon/audit"
	"github.com/tokfence/tokfence/daemon/meter"
)

func usageCommand() *cli.Command {
	return &cli.Command{
		Name:  "usage",
		Usage: "show tokens and spend, from the audit trail",
		UsageText: "tokfence usage [--by agent|session|provider|model] [--since 24h] [--json]\n\nExamples:\n" +
			"   tokfence usage --by agent --since 24h\n   tokfence usage --by model --json",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "by", Value: "agent", Usage: "group by agent, session, provider or model"},
			&cli.StringFlag{Name: "since", Value: "24h", Usage: "from `WHEN` on: a time back from now (30m, 2h, 1d, 1w) or an RFC 3339 time or local date (2026-01-02)"},
			&cli.BoolFlag{Name: "json", Usage: "print JSON"},
		},
		Action: runUsage,
	}
}

// usageRow is one group's totals.
type usageRow struct {
	Key          string  `json:"key"`
	Requests     int64   `json:"requests"`
	InputTokens  int64   `json:"input_tokens"`
	OutputTokens int64   `json:"output_tokens"`
	SpendUSD     float64 `json:"spend_usd"`
	Estimated    int64   `json:"estimated_requests,omitempty"`
	Unpriced     int64   `json:"unpriced_requests,omitempty"`
}

func runUsage(c *cli.Context) error {
	by := c.String("by")
	key := map[string]func(audit.Record) string{
		"agent":    func(r audit.Record) string { return r.Agent },
		"session":  func(r audit.Record) string { return r.Session },
		"provider": func(r audit.Record) string { return r.Provider },
		"model":    func(r audit.Record) string { return r.Provider + "/" + r.Model },
	}[by]
	if key == nil {
		return fmt.Errorf("--by %q: want agent, session, provider or model", by)
	}
	dir, err := auditDir(c)
	if err != nil {
		return err
	}
	since, err := parseSince(c.String("since"), time.Now())
	if err != nil {
		return err
	}
	rows := map[string]*usageRow{}
	f := audit.Filter{Since: since}
	err = meter.ReadSpend(dir, f, func(r audit.Record, cost meter.Cost) error {
		k := key(r)
		row := rows[k]
		if row == nil {
			row = &usageRow{Key: k}
			rows[k] = row
		}
		row.Requests++
		row.InputTokens += r.Usage.InputTokens
		row.OutputTokens += r.Usage.OutputTokens
		row.SpendUSD += meter.USD(cost.MicroUSD)
		if r.Usage.Estimated {
			row.Estimated++
		}
		if cost.Unpriced {
			row.Unpriced++
		}
		return nil
	})
	if err != nil {
		return err
	}
	list := make([]usageRow, 0, len(rows))
	for _, r := range rows {
		list = append(list, *r)
	}
	sort.Slice(list, func(i, j int) bool {
		return list[i].SpendUSD > list[j].SpendUSD || list[i].SpendUSD == list[j].SpendUSD && list[i].Key < list[j].Key
	})
	if c.Bool("json") {
		enc := json.NewEncoder(c.App.Writer)
		enc.SetIndent("", "  ")
		return enc.Encode(list)
	}
	tw := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "%s\tREQUESTS\tINPUT\tOUTPUT\tSPEND\tNOTES\n", map[string]string{"agent": "AGENT", "session": "SESSION", "provider": "PROVIDER", "model": "MODEL"}[by])
	for _, r := range list {
		notes := ""
		if r.Estimated > 0 {
			notes += fmt.Sprintf("%d estimated ", r.Estimated)
		}
		if r.Unpriced > 0 {
			notes += fmt.Sprintf("%d unpriced (tokens counted, spend unknown)", r.Unpriced)
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t$%.4f\t%s\n", r.Key, r.Requests, r.InputTokens, r.OutputTokens, r.SpendUSD, notes)
	}
	return tw.Flush()
}
