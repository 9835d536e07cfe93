package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/tokfence/tokfence/daemon"
	"github.com/tokfence/tokfence/daemon/ctl"
	"github.com/tokfence/tokfence/keystore"
)

func keyCommand() *cli.Command {
	return &cli.Command{
		Name:  "key",
		Usage: "manage provider keys in the OS keychain",
		UsageText: "tokfence key set|ls|rm [PROVIDER]\n\nExamples:\n   tokfence key set openai < key.txt\n" +
			"   tokfence key ls\n   tokfence key rm openai",
		Subcommands: []*cli.Command{
			{
				Name:  "set",
				Usage: "store a provider key (read from stdin or a no-echo prompt, never argv)",
				UsageText: "tokfence key set PROVIDER\n\nExamples:\n   tokfence key set openai            # prompts without echo\n" +
					"   pass show openai | tokfence key set openai",
				Action: runKeySet,
			},
			{
				Name:      "ls",
				Usage:     "list providers that have a key, with a fingerprint only",
				UsageText: "tokfence key ls [--json]\n\nExample:\n   tokfence key ls",
				Flags:     []cli.Flag{&cli.BoolFlag{Name: "json", Usage: "print JSON"}},
				Action:    runKeyLs,
			},
			{
				Name:      "rm",
				Usage:     "remove a provider key",
				UsageText: "tokfence key rm PROVIDER\n\nExample:\n   tokfence key rm openai",
				Action:    runKeyRm,
			},
		},
	}
}

// providerArg returns the one PROVIDER argument, checked against the
// provider table so a typo is caught before anything is stored.
func providerArg(c *cli.Context, cfg daemon.Config) (string, error) {
	if c.NArg() != 1 {
		return "", withHint(errors.New("want exactly one PROVIDER argument"), "keys are never taken from the command line; pipe them on stdin")
	}
	name := c.Args().First()
	ps, err := daemon.BuildProviders(cfg.Providers)
	if err != nil {
		return "", err
	}
	if _, ok := ps[name]; !ok {
		return "", withHint(fmt.Errorf("unknown provider %q", name),
			"known providers: "+strings.Join(ps.Names(), ", ")+"; add others under [providers.NAME] in the config file")
	}
	return name, nil
}

func runKeySet(c *cli.Context) error {
	cfg, err := loadConfig(c)
	if err != nil {
		return err
	}
	provider, err := providerArg(c, cfg)
	if err != nil {
		return err
	}
	key, err := readKey(c.App.Reader, c.App.ErrWriter, provider+" API key")
	if errors.Is(err, keystore.ErrInvalid) {
		return withHint(err, "nothing was stored: the "+provider+" key you had, if any, is unchanged. "+
			"Give exactly one key, with at most one trailing newline: `tokfence key set "+provider+" < key.txt`")
	}
	if err != nil {
		return err
	}
	store := openKeystore(cfg)
	if err := store.SetProviderKey(c.Context, provider, key); err != nil {
		return fmt.Errorf("store %s key: %w", provider, err)
	}
	fmt.Fprintf(c.App.Writer, "stored the %s key %s in the OS keychain\n", provider, key.Fingerprint())
	tellDaemon(c, cfg, "uses it")
	return nil
}

// tellDaemon asks a running daemon to pick up a key change now (it would
// notice on its own within a second) and says what happened. A daemon
// that is not running needs nothing: it reads the keys when it starts.
func tellDaemon(c *cli.Context, cfg daemon.Config, what string) {
	ctx, cancel := context.WithTimeout(c.Context, 5*time.Second)
	defer cancel()
	_, err := ctl.New(cfg.Socket).ReloadKeys(ctx)
	var down *ctl.DownError
	switch {
	case err == nil:
		fmt.Fprintf(c.App.Writer, "the running daemon %s from its next request\n", what)
	case errors.As(err, &down):
	default:
		fmt.Fprintf(c.App.ErrWriter, "note: could not tell the running daemon (%v); it notices the change within a second\n", err)
	}
}

// readKey reads one key (what names it in the prompt) from stdin: with a
// no-echo prompt on a terminal, else the whole input (bounded) with one
// trailing newline (LF or CRLF) removed. What keystore.ValidateKey refuses
// (nothing, only whitespace, whitespace at either end, a second line) is
// an error matching keystore.ErrInvalid; it never holds the input.
func readKey(in io.Reader, prompt io.Writer, what string) (keystore.Secret, error) {
	var raw []byte
	if f, ok := in.(*os.File); ok && isTerminal(f) {
		fmt.Fprintf(prompt, "%s (input hidden): ", what)
		b, err := readNoEcho(f)
		fmt.Fprintln(prompt)
		if err != nil {
			return keystore.Secret{}, fmt.Errorf("read key: %w", err)
		}
		raw = b
	} else {
		b, err := io.ReadAll(io.LimitReader(in, keystore.MaxSecretLen+2))
		if err != nil {
			return keystore.Secret{}, fmt.Errorf("read key from stdin: %w", err)
		}
		raw = b
	}
	raw = bytes.TrimSuffix(raw, []byte("\n"))
	raw = bytes.TrimSuffix(raw, []byte("\r"))
	if err := keystore.ValidateKey(raw); err != nil {
		return keystore.Secret{}, fmt.Errorf("read %s: %w", what, err)
	}
	return keystore.NewSecret(raw), nil
}

type keyRow struct {
	Provider    string    `json:"provider"`
	Fingerprint string    `json:"fingerprint"`
	Updated     time.Time `json:"updated"`
	Error       string    `json:"error,omitempty"`
}

func runKeyLs(c *cli.Context) error {
	cfg, err := loadConfig(c)
	if err != nil {
		return err
	}
	store := openKeystore(cfg)
	entries, _, err := store.Index().List()
	if err != nil {
		return err
	}
	rows := make([]keyRow, 0, len(entries))
	for _, e := range entries {
		row := keyRow{Provider: e.Provider, Updated: e.Updated}
		k, err := store.ProviderKey(c.Context, e.Provider)
		switch {
		case err == nil:
			row.Fingerprint = k.Fingerprint()
		case errors.Is(err, keystore.ErrUnavailable):
			return fmt.Errorf("list keys: %w", err)
		default:
			row.Error = err.Error()
		}
		rows = append(rows, row)
	}
	if c.Bool("json") {
		enc := json.NewEncoder(c.App.Writer)
		enc.SetIndent("", "  ")
		return enc.Encode(rows)
	}
	if len(rows) == 0 {
		fmt.Fprintln(c.App.Writer, "no keys stored; add one with `tokfence key set PROVIDER`")
		return nil
	}
	tw := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PROVIDER\tFINGERPRINT\tUPDATED")
	for _, r := range rows {
		fp := r.Fingerprint
		if r.Error != "" {
			fp = "(missing: " + r.Error + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", r.Provider, fp, r.Updated.Local().Format(time.DateTime))
	}
	return tw.Flush()
}

func runKeyRm(c *cli.Context) error {
	cfg, err := loadConfig(c)
	if err != nil {
		return err
	}
	provider, err := providerArg(c, cfg)
	if err != nil {
		return err
	}
	if err := openKeystore(cfg).DeleteProviderKey(c.Context, provider); err != nil {
		if errors.Is(err, keystore.ErrNotFound) {
			return withHint(fmt.Errorf("no %s key is stored", provider), "see `tokfence key ls`")
		}
		return fmt.Errorf("remove %s key: %w", provider, err)
	}
	fmt.Fprintf(c.App.Writer, "removed the %s key\n", provider)
	tellDaemon(c, cfg, "stops using it")
	return nil
}
