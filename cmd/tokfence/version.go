package main

import (
	"encoding/json"
	"fmt"
	"runtime"

	"github.com/urfave/cli/v2"

	"github.com/tokfence/tokfence/daemon"
)

func init() {
	// `tokfence --version` prints what `tokfence version` does.
	cli.VersionPrinter = func(c *cli.Context) { _ = printVersion(c, false) }
}

func versionCommand() *cli.Command {
	return &cli.Command{
		Name:      "version",
		Usage:     "print the version",
		UsageText: "tokfence version [--json]\n\nExamples:\n   tokfence version\n   tokfence --version\n   tokfence version --json | jq -r .version",
		Flags:     []cli.Flag{&cli.BoolFlag{Name: "json", Usage: "print JSON"}},
		Action:    runVersion,
	}
}

// versionInfo is what `tokfence version --json` prints.
type versionInfo struct {
	Version string `json:"version"`
	Go      string `json:"go"`
	OS      string `json:"os"`
	Arch    string `json:"arch"`
}

func runVersion(c *cli.Context) error { return printVersion(c, c.Bool("json")) }

func printVersion(c *cli.Context, asJSON bool) error {
	v := versionInfo{Version: daemon.Version, Go: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH}
	if asJSON {
		enc := json.NewEncoder(c.App.Writer)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	_, err := fmt.Fprintf(c.App.Writer, "tokfence %s (%s, %s/%s)\n", v.Version, v.Go, v.OS, v.Arch)
	return err
}
