package main

import (
	"os"
	"path/filepath"

	"github.com/urfave/cli/v2"

	"github.com/tokfence/tokfence/daemon"
	"github.com/tokfence/tokfence/keystore"
)

func globalFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "socket", Usage: "daemon socket `PATH` (env TOKFENCE_SOCKET)"},
		&cli.StringFlag{Name: "config", Usage: "config `FILE` (env TOKFENCE_CONFIG; default $XDG_CONFIG_HOME/tokfence/config.toml)"},
		&cli.StringFlag{Name: "state-dir", Usage: "state `DIR` (env TOKFENCE_STATE_DIR)"},
	}
}

// loadConfig merges flags > TOKFENCE_* env > config file > defaults.
func loadConfig(c *cli.Context) (daemon.Config, error) {
	cfg, err := daemon.Load(c.String("config"), os.Getenv)
	if err != nil {
		return daemon.Config{}, err
	}
	if v := c.String("socket"); v != "" {
		cfg.Socket = v
	}
	if v := c.String("state-dir"); v != "" {
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
	idx := keystore.NewIndex(filepath.Join(cfg.StateDir, "keys.json"))
	return keystore.New(keystore.OS{}, idx, cfg.KeychainTimeout.Duration)
}

// client returns a control-API client for the configured socket.
func client(c *cli.Context) (*daemon.Client, error) {
	cfg, err := loadConfig(c)
	if err != nil {
		return nil, err
	}
	return daemon.NewClient(cfg.Socket), nil
}
