package main

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/tokfence/tokfence/sensor"
)

func scanCommand() *cli.Command {
	return &cli.Command{
		Name:  "scan",
		Usage: "scan files (or stdin) for secrets with the daemon's sensors; exit 1 when anything is found",
		UsageText: "tokfence scan [--secrets FILE] [--json] [FILE...]\n\nExamples:\n" +
			"   git diff --cached | tokfence scan\n   tokfence scan --secrets known.txt --json src/*.go",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "secrets", Usage: "`FILE` of known secrets, one per line, matched in every encoding"},
			&cli.BoolFlag{Name: "json", Usage: "print one JSON object per hit"},
		},
		Action: runScan,
	}
}

// scanHit is one line of `tokfence scan` output.
type scanHit struct {
	File        string `json:"file"`
	Offset      int64  `json:"offset"`
	Rule        string `json:"rule"`
	Class       string `json:"class"`
	Encoding    string `json:"encoding"`
	Fingerprint string `json:"fingerprint"`
}

// runScan exits 0 when clean, 1 when anything is found, 2 on error.
func runScan(c *cli.Context) error {
	m, err := scanMatcher(c.String("secrets"))
	if err != nil {
		return cli.Exit(err, 2)
	}
	files := c.Args().Slice()
	if len(files) == 0 {
		files = []string{"-"}
	}
	found := 0
	for _, name := range files {
		hits, err := scanOne(c.App.Reader, name, m)
		if err != nil {
			return cli.Exit(fmt.Errorf("scan %s: %w", name, err), 2)
		}
		for _, h := range hits {
			found++
			row := scanHit{File: name, Offset: h.Offset, Rule: h.Rule, Class: string(h.Class), Encoding: h.Encoding, Fingerprint: h.Fingerprint}
			if c.Bool("json") {
				json.NewEncoder(c.App.Writer).Encode(row)
			} else {
				fmt.Fprintf(c.App.Writer, "%s:%d: %s (%s, %s) fingerprint %s\n", row.File, row.Offset, row.Rule, row.Class, row.Encoding, row.Fingerprint)
			}
		}
	}
	if found > 0 {
		return cli.Exit("", 1)
	}
	return nil
}

func scanOne(stdin io.Reader, name string, m *sensor.Matcher) ([]sensor.Hit, error) {
	r := stdin
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	}
	return sensor.ScanReader(r, m, sensor.Request, contentTypeFor(name))
}

func contentTypeFor(name string) string {
	switch {
	case strings.HasSuffix(name, ".json"):
		return "application/json"
	case strings.HasSuffix(name, ".sse"):
		return "text/event-stream"
	}
	return "text/plain"
}

// scanMatcher builds the sensors: format rules always, plus the known
// secrets of the --secrets file in every encoding. The fingerprint key is
// random per run: fingerprints tell hits apart within one report only.
func scanMatcher(secretsFile string) (*sensor.Matcher, error) {
	var secrets []sensor.Secret
	if secretsFile != "" {
		b, err := os.ReadFile(secretsFile)
		if err != nil {
			return nil, fmt.Errorf("read --secrets: %w", err)
		}
		sc := bufio.NewScanner(bytes.NewReader(b))
		sc.Buffer(make([]byte, 64<<10), 64<<10)
		for n := 1; sc.Scan(); n++ {
			line := strings.TrimSpace(sc.Text())
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			secrets = append(secrets, sensor.Secret{ID: fmt.Sprintf("%s:%d", secretsFile, n), Class: sensor.ClassProviderKey, Value: []byte(line)})
		}
		if err := sc.Err(); err != nil {
			return nil, fmt.Errorf("read --secrets: %w", err)
		}
	}
	key := make([]byte, 32)
	rand.Read(key)
	return sensor.NewMatcher(secrets, sensor.Options{FormatRules: true, FingerprintKey: key})
}
