package main

import (
	"fmt"
	"runtime"

	"github.com/urfave/cli/v2"

	"github.com/tokfence/tokfence/daemon"
)

func init() {
	// `tokfence --version` prints what `tokfence version` does.
	cli.VersionPrinter = func(c *cli.Context) { _ = runVersion(c) }
}

func versionCommand() *cli.Command {
	return &cli.Command{
		Name:      "version",
		Usage:     "print the version",
		UsageText: "tokfence version\n\nExamples:\n   tokfence version\n   tokfence --version",
		Action:    runVersion,
	}
}

func runVersion(c *cli.Context) error {
	fmt.Fprintf(c.App.Writer, "tokfence %s (%s, %s/%s)\n", daemon.Version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return nil
}
