package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/tokfence/tokfence/daemon"
	"github.com/tokfence/tokfence/daemon/api"
	"github.com/urfave/cli/v2"
)

// scopeFlags are shared by grant and exec.
func scopeFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "agent", Usage: "agent `NAME` (shown in sessions and the audit trail)", Required: true},
		&cli.StringSliceFlag{Name: "provider", Usage: "allowed `PROVIDER` (repeat for several)", Required: true},
		&cli.StringSliceFlag{Name: "model", Usage: "allowed model `GLOB` (repeatable; default any)"},
		&cli.StringSliceFlag{Name: "endpoint", Usage: "allowed endpoint `\"METHOD /path-glob\"` (repeatable; default any)"},
		&cli.StringFlag{Name: "ttl", Usage: "token lifetime `DURATION`, e.g. 30m (grant: default 15m, renew with tokfence renew; exec: default as long as the agent runs; at most the daemon's max_ttl)"},
		&cli.Int64Flag{Name: "max-requests", Usage: "refuse requests after `N`"},
		&cli.Int64Flag{Name: "max-tokens", Usage: "token budget `N` for the session"},
		&cli.Float64Flag{Name: "max-spend", Usage: "spend limit in `USD` for the session, e.g. 2.00"},
	}
}

func grantRequest(c *cli.Context) api.GrantRequest {
	return api.GrantRequest{
		Agent:       c.String("agent"),
		Providers:   c.StringSlice("provider"),
		Models:      c.StringSlice("model"),
		Endpoints:   c.StringSlice("endpoint"),
		TTL:         c.String("ttl"),
		MaxRequests: c.Int64("max-requests"),
		MaxTokens:   c.Int64("max-tokens"),
		MaxSpendUSD: c.Float64("max-spend"),
	}
}

func grantCommand() *cli.Command {
	return &cli.Command{
		Name:  "grant",
		Usage: "mint a capability token for an agent",
		UsageText: "tokfence grant --agent NAME --provider P [--provider P2] [--model GLOB] [--endpoint GLOB]\n" +
			"               [--ttl 30m] [--max-requests N] [--max-tokens N] [--max-spend USD] [--format token|env|json]\n\nExamples:\n" +
			"   tokfence grant --agent coder --provider openai --model 'gpt-4o*' --ttl 30m\n" +
			"   eval \"$(tokfence grant --agent coder --provider anthropic --format env)\"",
		Flags: append(scopeFlags(),
			&cli.StringFlag{Name: "format", Value: "token", Usage: "output: token, env (shell export lines) or json"}),
		Action: runGrant,
	}
}

func runGrant(c *cli.Context) error {
	if err := checkFormat(c); err != nil {
		return err
	}
	cfg, err := loadConfig(c)
	if err != nil {
		return err
	}
	cl, err := client(c)
	if err != nil {
		return err
	}
	g, err := cl.Grant(c.Context, grantRequest(c))
	if err != nil {
		return err
	}
	if c.String("format") == "env" {
		warnUnexported(c.App.ErrWriter, cfg, g.Scope.Providers, g.BaseURLs, "grant --format env prints")
	}
	return printGrant(c, g)
}

// warnUnexported warns on w about each granted provider that names no
// environment variable for the token (key_env, token_env) or, where the
// grant has a base URL (baseURLs, by provider), none for that (base_env):
// the built-in providers all do, a custom one only if its config says
// so, and without them `exec` gives the agent nothing for it and `grant
// --format env` prints nothing for it. The hint names the config lines
// to add. what is the command's part: "exec sets", "grant --format env
// prints".
func warnUnexported(w io.Writer, cfg daemon.Config, granted []string, baseURLs map[string]string, what string) {
	providers, err := daemon.BuildProviders(cfg.Providers)
	if err != nil {
		return // the daemon accepted this config; a CLI that cannot read it has said so elsewhere
	}
	file := cfg.File
	if file == "" {
		file = "the config file (--config; by default $XDG_CONFIG_HOME/tokfence/config.toml)"
	}
	for _, name := range granted {
		p, ok := providers[name]
		if !ok {
			continue
		}
		var lines, missing []string
		stem := strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
		if p.KeyEnv == "" && p.TokenEnv == "" {
			missing = append(missing, "the session's token")
			lines = append(lines, fmt.Sprintf("key_env = %q", stem+"_API_KEY"))
		}
		if p.BaseEnv == "" && baseURLs[name] != "" {
			missing = append(missing, "its base URL ("+baseURLs[name]+")")
			lines = append(lines, fmt.Sprintf("base_env = %q", stem+"_BASE_URL"))
		}
		if len(missing) == 0 {
			continue
		}
		fmt.Fprintf(w, "tokfence: warning: provider %s names no environment variable for %s, so %s none for it\n",
			name, strings.Join(missing, " or "), what)
		fmt.Fprintf(w, "tokfence: hint: add the names your agent reads under [providers.%s] in %s, e.g. %s\n",
			name, file, strings.Join(lines, " and "))
	}
}

func renewCommand() *cli.Command {
	return &cli.Command{
		Name:  "renew",
		Usage: "issue a further token for a live session, expiring later (never past the session's start plus max_ttl)",
		UsageText: "tokfence renew [--ttl 30m] [--format token|env|json] SESSION_ID\n\n" +
			"A `grant` token lives 15 minutes by default; renew gives the same session (same\n" +
			"agent, scope, limits and risk state) a new token before it runs out. The old\n" +
			"token stays good until its own expiry; `tokfence kill` ends both. Sessions of\n" +
			"`tokfence exec` need no renewal: their token lives as long as the agent, up to max_ttl.\n\nExamples:\n" +
			"   tokfence renew 3f2a9c0d5e6b7a8190a1b2c3d4e5f607\n" +
			"   eval \"$(tokfence renew --ttl 1h --format env \"$TOKFENCE_SESSION\")\"",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "ttl", Usage: "the new token's lifetime from now, e.g. 30m (default 15m)"},
			&cli.StringFlag{Name: "format", Value: "token", Usage: "output: token, env (shell export lines) or json"},
		},
		Action: runRenew,
	}
}

func runRenew(c *cli.Context) error {
	if c.NArg() != 1 {
		return withHint(errors.New("name the session to renew"), "see `tokfence sessions` for ids")
	}
	if err := checkFormat(c); err != nil {
		return err
	}
	cl, err := client(c)
	if err != nil {
		return err
	}
	g, err := cl.Renew(c.Context, api.RenewRequest{Session: c.Args().First(), TTL: c.String("ttl")})
	if err != nil {
		return err
	}
	return printGrant(c, g)
}

func checkFormat(c *cli.Context) error {
	if f := c.String("format"); f != "token" && f != "env" && f != "json" {
		return fmt.Errorf("--format %q: want token, env or json", f)
	}
	return nil
}

// printGrant writes g in the --format asked for.
func printGrant(c *cli.Context, g *api.Grant) error {
	switch c.String("format") {
	case "json":
		enc := json.NewEncoder(c.App.Writer)
		enc.SetIndent("", "  ")
		return enc.Encode(g)
	case "env":
		printEnv(c.App.Writer, g)
	default:
		fmt.Fprintln(c.App.Writer, g.Token)
	}
	return nil
}

// printEnv writes shell export lines for the variables SDKs read.
func printEnv(w io.Writer, g *api.Grant) {
	names := make([]string, 0, len(g.Env))
	for k := range g.Env {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		fmt.Fprintf(w, "export %s=%s\n", k, shellQuote(g.Env[k]))
	}
	fmt.Fprintf(w, "export TOKFENCE_SESSION=%s\n", g.Session)
	if g.TCP == "" {
		fmt.Fprintln(w, "# the daemon has no TCP listener, so no *_BASE_URL is set; start it with --tcp 127.0.0.1:9471")
	}
}

// shellQuote single-quotes s for POSIX shells.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
