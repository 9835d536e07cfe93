package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/urfave/cli/v2"

	"github.com/tokfence/tokfence/daemon"
	"github.com/tokfence/tokfence/daemon/ctl"
	"github.com/tokfence/tokfence/daemon/layout"
	"github.com/tokfence/tokfence/keystore"
)

func globalFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "socket", Usage: "daemon socket `PATH` (env TOKFENCE_SOCKET)"},
		&cli.StringFlag{Name: "config", Usage: "config `FILE` (env TOKFENCE_CONFIG; default $XDG_CONFIG_HOME/tokfence/config.toml)"},
		&cli.StringFlag{Name: "state-dir", Usage: "state `DIR` (env TOKFENCE_STATE_DIR)"},
	}
}

// withGlobalFlags gives every command, at every depth, the global flags
// too, so that `tokfence daemon --config F` and `tokfence --config F
// daemon` mean the same; globalFlag reads whichever was given.
func withGlobalFlags(cmds []*cli.Command) []*cli.Command {
	for _, cmd := range cmds {
		cmd.Flags = append(cmd.Flags, globalFlags()...)
		withGlobalFlags(cmd.Subcommands)
	}
	return cmds
}

// globalFlag returns the value of global flag name wherever on the command
// line it was given (before the command or after it), or "". urfave/cli's
// own lookup stops at the innermost command that defines a flag, set or
// not, which silently ignored `tokfence --config F daemon`. Given twice
// with different values, it is an error rather than a guess.
func globalFlag(c *cli.Context, name string) (string, error) {
	v, found := "", false
	for _, ctx := range c.Lineage() {
		if !slices.Contains(ctx.LocalFlagNames(), name) {
			continue
		}
		got := ctx.String(name)
		if found && got != v {
			return "", fmt.Errorf("--%s given twice (%q and %q); give it once", name, v, got)
		}
		v, found = got, true
	}
	return v, nil
}

// loadConfig merges flags > TOKFENCE_* env > config file > defaults.
func loadConfig(c *cli.Context) (daemon.Config, error) {
	var flags [3]string
	for i, name := range []string{"config", "socket", "state-dir"} {
		v, err := globalFlag(c, name)
		if err != nil {
			return daemon.Config{}, err
		}
		flags[i] = v
	}
	cfg, err := daemon.Load(flags[0], os.Getenv)
	if err != nil {
		return daemon.Config{}, err
	}
	if v := flags[1]; v != "" {
		cfg.Socket = v
	}
	if v := flags[2]; v != "" {
		cfg.StateDir = v
	}
	for _, p := range []*string{&cfg.Socket, &cfg.StateDir, &cfg.PolicyFile, &cfg.PricingFile} {
		if *p == "" {
			continue
		}
		if abs, err := filepath.Abs(*p); err == nil {
			*p = abs
		}
	}
	return cfg, nil
}

// openKeystore returns the OS keychain store with the provider index in the
// state directory.
func openKeystore(cfg daemon.Config) *keystore.Store {
	idx := keystore.NewIndex(layout.StateDir(cfg.StateDir).KeyIndex())
	return keystore.New(keystore.OS{}, idx, cfg.KeychainTimeout.Duration)
}

// client returns a control-API client for the configured socket.
func client(c *cli.Context) (*ctl.Client, error) {
	cfg, err := loadConfig(c)
	if err != nil {
		return nil, err
	}
	return ctl.New(cfg.Socket), nil
}
