package main

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/tokfence/tokfence/daemon"
)

func daemonCommand() *cli.Command {
	return &cli.Command{
		Name:  "daemon",
		Usage: "run the daemon in the foreground",
		UsageText: "tokfence daemon [--socket PATH] [--config FILE] [--state-dir DIR] [--tcp 127.0.0.1:9471] [--policy FILE]\n\n" +
			"Example:\n   tokfence daemon --tcp 127.0.0.1:9471",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "log-level", Usage: "debug, info, warn or error"},
			&cli.BoolFlag{Name: "allow-root", Usage: "also serve root on the socket"},
			&cli.StringFlag{Name: "tcp", Usage: "also serve the proxy on loopback `ADDR`, e.g. 127.0.0.1:9471 (env TOKFENCE_TCP)"},
			&cli.StringFlag{Name: "policy", Usage: "policy `FILE` (TOML, hot-reloaded; env TOKFENCE_POLICY_FILE)"},
			&cli.BoolFlag{Name: "reset-revocations", Usage: "when revocations.json fails its keychain anchor (deleted, replaced, rolled back), start a new list that kills every token minted so far"},
		},
		Action: runDaemon,
	}
}

func runDaemon(c *cli.Context) error {
	cfg, err := loadConfig(c)
	if err != nil {
		return err
	}
	cfg.ResetRevocations = c.Bool("reset-revocations")
	if c.IsSet("allow-root") {
		cfg.AllowRoot = c.Bool("allow-root")
	}
	if v := c.String("tcp"); v != "" {
		cfg.TCP = v
	}
	if v := c.String("policy"); v != "" {
		abs, err := filepath.Abs(v)
		if err != nil {
			return err
		}
		cfg.PolicyFile = abs
	}
	if v := c.String("log-level"); v != "" {
		cfg.LogLevel = v
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	level, _ := daemon.ParseLogLevel(cfg.LogLevel)
	log := slog.New(slog.NewTextHandler(c.App.ErrWriter, &slog.HandlerOptions{Level: level}))
	d, err := daemon.New(cfg, daemon.Options{Logger: log, Keystore: openKeystore(cfg)})
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return d.Run(ctx)
}
