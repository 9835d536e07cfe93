package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/tokfence/tokfence/daemon/audit"
	"github.com/tokfence/tokfence/daemon/layout"
	"github.com/tokfence/tokfence/keystore"
)

func auditCommand() *cli.Command {
	return &cli.Command{
		Name:  "audit",
		Usage: "show the tamper-evident audit trail",
		UsageText: "tokfence audit [--follow] [-n N] [--session ID] [--agent NAME] [--fingerprint FP] [--since 1h|1d|2026-01-02] [--json]\n" +
			"tokfence audit verify\ntokfence audit hash < secret.txt\n\n" +
			"--follow prints new records as they are written, like tail -f: nothing already\n" +
			"written unless -n or --since asks for it. --agent also selects the records that\n" +
			"name only a session of that agent (kill), and kill --all once it had one.\n\nExamples:\n" +
			"   tokfence audit --since 1d --agent coder\n   tokfence audit --follow -n 20 --json\n   tokfence audit verify",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "follow", Aliases: []string{"f"}, Usage: "keep printing new records (from now on; with -n or --since, those first)"},
			&cli.IntFlag{Name: "lines", Aliases: []string{"n"}, Usage: "only the last `N` matching records already written", DefaultText: "all; with --follow, none"},
			&cli.StringFlag{Name: "session", Usage: "only session `ID`"},
			&cli.StringFlag{Name: "agent", Usage: "only agent `NAME`, and the records of its sessions"},
			&cli.StringFlag{Name: "event", Usage: "only events of `KIND` (request, response, sensor_hit, kill, ...)"},
			&cli.StringFlag{Name: "fingerprint", Usage: "only records naming the secret of fingerprint `FP` (from `tokfence audit hash`)"},
			&cli.StringFlag{Name: "since", Usage: "only records from `WHEN` on: a time back from now (90s, 30m, 2h, 1d, 1w, 1d12h), an RFC 3339 time (2026-01-02T15:04:05Z), or a local time or date (2026-01-02 15:04:05, 2026-01-02)"},
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
			UsageText: "tokfence audit verify [--json]\n\nExamples:\n   tokfence audit verify\n   tokfence audit verify --json | jq .intact",
			Flags:     []cli.Flag{&cli.BoolFlag{Name: "json", Usage: "print JSON: intact, the counts, or where the chain breaks"}},
			Action:    runAuditVerify,
		}},
	}
}

func auditDir(c *cli.Context) (string, error) {
	cfg, err := loadConfig(c)
	if err != nil {
		return "", err
	}
	return layout.StateDir(cfg.StateDir).Audit(), nil
}

func runAudit(c *cli.Context) error {
	dir, err := auditDir(c)
	if err != nil {
		return err
	}
	since, err := parseSince(c.String("since"), time.Now())
	if err != nil {
		return err
	}
	n := c.Int("lines")
	if n < 0 {
		return fmt.Errorf("-n %d: want a count of records, 0 or more", n)
	}
	sel := &recordSelector{agent: c.String("agent"), f: audit.Filter{Session: c.String("session"),
		Event: c.String("event"), Fingerprint: c.String("fingerprint"), Since: since}}
	print := func(r audit.Record) error { return printRecord(c.App.Writer, r, c.Bool("json")) }
	if !c.Bool("follow") {
		_, err := readOld(dir, sel, c.IsSet("lines"), n, print)
		if errors.Is(err, fs.ErrNotExist) {
			return withHint(fmt.Errorf("no audit trail in %s yet", dir), "the daemon writes it from its first start: `tokfence daemon`")
		}
		return err
	}
	pos, err := followStart(dir, sel, c.IsSet("lines"), n, c.IsSet("since"), print)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(c.Context, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	fmt.Fprintf(c.App.ErrWriter, "tokfence: following the audit trail in %s for new records (Ctrl-C ends; -n N shows the last N first)\n", dir)
	return audit.FollowFrom(ctx, dir, pos, audit.Filter{}, func(r audit.Record) error {
		if sel.match(r) {
			return print(r)
		}
		return nil
	})
}

// followStart prints what --follow shows of the records already written
// and returns where following starts. Like tail -f it shows none of them
// unless -n or --since asks; with --agent it still reads them, silently,
// to learn the agent's sessions. A trail not yet written is followed from
// its start when it appears.
func followStart(dir string, sel *recordSelector, showN bool, n int, showSince bool, print func(audit.Record) error) (audit.Position, error) {
	var pos audit.Position
	var err error
	switch {
	case showN || showSince:
		pos, err = readOld(dir, sel, showN, n, print)
	case sel.agent != "":
		pos, err = readOld(dir, sel, true, 0, print)
	default:
		return audit.End(dir)
	}
	if errors.Is(err, fs.ErrNotExist) {
		return audit.Position{}, nil
	}
	return pos, err
}

// readOld prints the records already written that sel selects: all of
// them, or with limit only the last n. It returns where the trail ended.
func readOld(dir string, sel *recordSelector, limit bool, n int, print func(audit.Record) error) (audit.Position, error) {
	if !limit {
		return audit.ReadTo(dir, audit.Filter{}, func(r audit.Record) error {
			if sel.match(r) {
				return print(r)
			}
			return nil
		})
	}
	ring := make([]audit.Record, 0, min(n, 1<<16))
	next := 0 // where the oldest kept record is, once ring is full
	pos, err := audit.ReadTo(dir, audit.Filter{}, func(r audit.Record) error {
		switch {
		case !sel.match(r) || n == 0:
		case len(ring) < n:
			ring = append(ring, r)
		default:
			ring[next], next = r, (next+1)%n
		}
		return nil
	})
	if err != nil {
		return pos, err
	}
	for i := range ring {
		if err := print(ring[(next+i)%len(ring)]); err != nil {
			return pos, err
		}
	}
	return pos, nil
}

// recordSelector decides which records `tokfence audit` prints: those its
// filter matches and, with an agent, only that agent's. Some records name
// a session and not its agent (a kill): the selector joins them by
// session, learning each of the agent's sessions from the records that
// name both (its grant). So it must see every record, oldest first,
// whether it prints them or not. A kill --all names neither and ends
// every session: it is selected for an agent that had one by then.
type recordSelector struct {
	f        audit.Filter // without Agent
	agent    string
	sessions map[string]bool // the agent's, as learnt
}

func (s *recordSelector) match(r audit.Record) bool {
	return (s.agent == "" || s.ofAgent(r)) && s.f.Match(r)
}

func (s *recordSelector) ofAgent(r audit.Record) bool {
	switch {
	case r.Agent == s.agent:
		if r.Session != "" {
			if s.sessions == nil {
				s.sessions = map[string]bool{}
			}
			s.sessions[r.Session] = true
		}
		return true
	case r.Agent != "":
		return false
	case r.Session != "":
		return s.sessions[r.Session]
	}
	return r.Event == audit.EventKill && len(s.sessions) > 0
}

// parseSince reads a --since value: empty (no bound), a time back from
// now (a Go duration, and also days and weeks: 1d, 1w, 1d12h), an RFC
// 3339 time (2026-01-02T15:04:05Z), or a local time as the text output
// prints it (2026-01-02 15:04:05.000) or a date (2026-01-02, midnight
// local time).
func parseSince(v string, now time.Time) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t, nil
	}
	// Local times as `tokfence audit` prints them (fractions allowed),
	// and a date alone.
	for _, layout := range []string{time.DateTime, time.DateOnly} {
		if t, err := time.ParseInLocation(layout, v, time.Local); err == nil {
			return t, nil
		}
	}
	if d, ok := parseAgo(v); ok {
		return now.Add(-d), nil
	}
	return time.Time{}, withHint(fmt.Errorf("--since %q: want a time back from now or an RFC 3339 time or date", v),
		"e.g. --since 30m, 2h, 1d, 1w, 1d12h, 2026-01-02 or 2026-01-02T15:04:05Z")
}

// parseAgo reads a positive duration with optional leading weeks and days
// ("1w", "2d12h", "90m"), which time.ParseDuration does not know.
func parseAgo(v string) (time.Duration, bool) {
	var d time.Duration
	rest := v
	for _, u := range []struct {
		suffix byte
		unit   time.Duration
	}{{'w', 7 * 24 * time.Hour}, {'d', 24 * time.Hour}} {
		i := 0
		for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
			i++
		}
		if i == 0 || i >= len(rest) || rest[i] != u.suffix {
			continue
		}
		k, err := strconv.Atoi(rest[:i])
		if err != nil || k > 10000 {
			return 0, false
		}
		d += time.Duration(k) * u.unit
		rest = rest[i+1:]
	}
	if rest != "" {
		pd, err := time.ParseDuration(rest)
		if err != nil || pd < 0 {
			return 0, false
		}
		d += pd
	}
	return d, d > 0
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
	if c.Bool("json") && (err == nil || errors.As(err, &be)) {
		if perr := printAuditVerify(c, res, be); perr != nil {
			return perr
		}
	}
	if errors.As(err, &be) {
		return withHint(fmt.Errorf("audit trail broken at %s line %d (seq %d): %s", be.File, be.Line, be.Seq, be.Reason),
			"records from there on cannot be vouched for; keep a copy of the directory for investigation")
	}
	if err != nil || c.Bool("json") {
		return err
	}
	fmt.Fprintf(c.App.Writer, "audit trail intact: %d records (seq %d..%d) in %d files\n", res.Records, res.First, res.Last, res.Files)
	if res.Unanchored > 0 {
		fmt.Fprintf(c.App.Writer, "note: the newest %d records are past audit.head, which a running daemon rewrites at most every %v and a crash can leave behind; it is not a break\n", res.Unanchored, audit.DefaultHeadEvery)
	}
	return nil
}

// auditVerify is what `tokfence audit verify --json` prints; a broken
// trail still exits 1.
type auditVerify struct {
	Intact     bool          `json:"intact"`
	Records    int           `json:"records"`
	Files      int           `json:"files"`
	First      uint64        `json:"first_seq"`
	Last       uint64        `json:"last_seq"`
	Unanchored int           `json:"unanchored,omitempty"`
	Break      *auditBreakAt `json:"break,omitempty"`
}

type auditBreakAt struct {
	File   string `json:"file"`
	Line   int    `json:"line"`
	Seq    uint64 `json:"seq"`
	Reason string `json:"reason"`
}

func printAuditVerify(c *cli.Context, res audit.Result, be *audit.BreakError) error {
	out := auditVerify{Intact: be == nil, Records: res.Records, Files: res.Files, First: res.First, Last: res.Last, Unanchored: res.Unanchored}
	if be != nil {
		out.Break = &auditBreakAt{File: be.File, Line: be.Line, Seq: be.Seq, Reason: be.Reason}
	}
	enc := json.NewEncoder(c.App.Writer)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
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
