package main

import (
	"fmt"
	"runtime"

	"github.com/urfave/cli/v2"

	"github.com/tokfence/tokfence/daemon"
)

func versionCommand() *cli.Command {
	return &cli.Command{
		Name:      "version",
		Usage:     "print the version",
		UsageText: "tokfence version\n\nExample:\n   tokfence version",
		Action:    runVersion,
	}
}

func runVersion(c *cli.Context) error {
	fmt.Fprintf(c.App.Writer, "tokfence %s (%s, %s/%s)\n", daemon.Version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return nil
}
