package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/tokfence/tokfence/daemon/audit"
	"github.com/tokfence/tokfence/keystore"
)

func auditCommand() *cli.Command {
	return &cli.Command{
		Name:  "audit",
		Usage: "show the tamper-evident audit trail",
		UsageText: "tokfence audit [--follow] [--session ID] [--agent NAME] [--fingerprint FP] [--since 1h] [--json]\n" +
			"tokfence audit verify\ntokfence audit hash < secret.txt\n\nExamples:\n   tokfence audit --since 1h --agent coder\n   tokfence audit --follow --json\n   tokfence audit verify",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "follow", Aliases: []string{"f"}, Usage: "keep printing new records"},
			&cli.StringFlag{Name: "session", Usage: "only session `ID`"},
			&cli.StringFlag{Name: "agent", Usage: "only agent `NAME`"},
			&cli.StringFlag{Name: "event", Usage: "only events of `KIND` (request, response, sensor_hit, kill, ...)"},
			&cli.StringFlag{Name: "fingerprint", Usage: "only records naming the secret of fingerprint `FP` (from `tokfence audit hash`)"},
			&cli.DurationFlag{Name: "since", Usage: "only records newer than `DURATION` ago"},
			&cli.BoolFlag{Name: "json", Usage: "print JSON Lines"},
		},
		Action: runAudit,
		Subcommands: []*cli.Command{{
			Name:  "hash",
			Usage: "print a secret's fingerprint as the trail writes it, to search the trail for it",
			UsageText: "tokfence audit hash < secret.txt\n\n" +
				"The value is read from stdin or a no-echo prompt, never the command line (which\n" +
				"shell history and ps keep), and fingerprinted by the daemon with the trail's key.\n\nExample:\n" +
				"   tokfence audit --fingerprint \"$(tokfence audit hash < leaked.txt)\"",
			Action: runAuditHash,
		}, {
			Name:      "verify",
			Usage:     "check the hash chain and name the first broken record",
			UsageText: "tokfence audit verify\n\nExample:\n   tokfence audit verify",
			Action:    runAuditVerify,
		}},
	}
}

func auditDir(c *cli.Context) (string, error) {
	cfg, err := loadConfig(c)
	if err != nil {
		return "", err
	}
	return filepath.Join(cfg.StateDir, "audit"), nil
}

func runAudit(c *cli.Context) error {
	dir, err := auditDir(c)
	if err != nil {
		return err
	}
	f := audit.Filter{Session: c.String("session"), Agent: c.String("agent"), Event: c.String("event"), Fingerprint: c.String("fingerprint")}
	if d := c.Duration("since"); d > 0 {
		f.Since = time.Now().Add(-d)
	}
	print := func(r audit.Record) error { return printRecord(c.App.Writer, r, c.Bool("json")) }
	if c.Bool("follow") {
		ctx, stop := signal.NotifyContext(c.Context, syscall.SIGINT, syscall.SIGTERM)
		defer stop()
		return audit.Follow(ctx, dir, f, print)
	}
	return audit.Read(dir, f, print)
}

func runAuditHash(c *cli.Context) error {
	if c.NArg() > 0 {
		return withHint(errors.New("the value to hash is read from stdin, not the command line"),
			"the command line is kept in shell history and shown by ps: `tokfence audit hash < value.txt`, or type it at the prompt")
	}
	v, err := readKey(c.App.Reader, c.App.ErrWriter, "value to fingerprint")
	if errors.Is(err, keystore.ErrInvalid) {
		return withHint(err, "give exactly one value, with at most one trailing newline: `tokfence audit hash < value.txt`")
	}
	if err != nil {
		return err
	}
	cl, err := client(c)
	if err != nil {
		return err
	}
	fp, err := cl.AuditHash(c.Context, string(v.Reveal()))
	if err != nil {
		return err
	}
	fmt.Fprintln(c.App.Writer, fp)
	return nil
}

func runAuditVerify(c *cli.Context) error {
	dir, err := auditDir(c)
	if err != nil {
		return err
	}
	res, err := audit.Verify(dir)
	var be *audit.BreakError
	if errors.As(err, &be) {
		return withHint(fmt.Errorf("audit trail broken at %s line %d (seq %d): %s", be.File, be.Line, be.Seq, be.Reason),
			"records from there on cannot be vouched for; keep a copy of the directory for investigation")
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(c.App.Writer, "audit trail intact: %d records (seq %d..%d) in %d files\n", res.Records, res.First, res.Last, res.Files)
	if res.Unanchored > 0 {
		fmt.Fprintf(c.App.Writer, "note: the newest %d records are past audit.head, which a running daemon rewrites at most every %v and a crash can leave behind; it is not a break\n", res.Unanchored, audit.DefaultHeadEvery)
	}
	return nil
}

// printRecord writes one record as JSON or as one readable line.
func printRecord(w io.Writer, r audit.Record, asJSON bool) error {
	if asJSON {
		return json.NewEncoder(w).Encode(r)
	}
	parts := []string{r.Time.Local().Format("2006-01-02 15:04:05.000"), fmt.Sprintf("#%d", r.Seq), r.Event}
	add := func(k, v string) {
		if v != "" {
			parts = append(parts, k+"="+v)
		}
	}
	add("session", r.Session)
	add("agent", r.Agent)
	add("provider", r.Provider)
	add("model", r.Model)
	if r.Method != "" {
		parts = append(parts, r.Method+" "+r.Path)
	}
	if r.Status != 0 {
		add("status", fmt.Sprint(r.Status))
	}
	if r.LatencyMS != 0 {
		add("latency", fmt.Sprintf("%.1fms", r.LatencyMS))
	}
	if r.Usage != nil {
		add("tokens", fmt.Sprintf("%d in/%d out", r.Usage.InputTokens, r.Usage.OutputTokens))
	}
	add("rule", r.Rule)
	add("encoding", r.Encoding)
	add("direction", r.Direction)
	add("fingerprint", r.Fingerprint)
	if r.From != "" || r.To != "" {
		parts = append(parts, r.From+"→"+r.To)
	}
	add("reason", r.Reason)
	add("error", r.Error)
	keys := make([]string, 0, len(r.Detail))
	for k := range r.Detail {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		add(k, r.Detail[k])
	}
	_, err := fmt.Fprintln(w, strings.Join(parts, "  "))
	return err
}
