package main

import (
	"bytes"
	"errors"
	"fmt"
	"html"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"
)

func installServiceCommand() *cli.Command {
	return &cli.Command{
		Name:  "install-service",
		Usage: "write a systemd user unit (Linux) or a launchd agent (macOS) that runs the daemon at login",
		UsageText: "tokfence install-service [--print] [--force] [--bin PATH]\n\n" + serviceHelp + "\n\n" +
			"A file that is already there and differs is left alone unless --force is given.\n\nExamples:\n" +
			"   tokfence install-service --print\n" + serviceExample,
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "print", Usage: "print the files instead of writing them"},
			&cli.BoolFlag{Name: "force", Usage: "overwrite files that differ from what would be written"},
			&cli.StringFlag{Name: "bin", Usage: "the tokfence `PATH` the service runs (default: this binary)"},
		},
		Action: runInstallService,
	}
}

const serviceHelp = "On Linux it writes tokfence.service and tokfence.socket to\n" +
	"~/.config/systemd/user: enable the service to run the daemon from login, or the\n" +
	"socket to start it on first use (socket activation). On macOS it writes\n" +
	"~/Library/LaunchAgents/" + launchdLabel + ".plist. It prints what to run next."

const serviceExample = "   tokfence install-service && systemctl --user daemon-reload && systemctl --user enable --now tokfence.socket\n" +
	"   tokfence install-service && launchctl bootstrap gui/$(id -u) ~/Library/LaunchAgents/" + launchdLabel + ".plist"

// serviceFile is one file install-service writes.
type serviceFile struct {
	Path    string
	Content string
}

func runInstallService(c *cli.Context) error {
	if c.NArg() > 0 {
		return &usageError{msg: "install-service takes no arguments", hint: helpHint("tokfence install-service")}
	}
	bin, err := serviceBinary(c.String("bin"))
	if err != nil {
		return err
	}
	cfg, err := loadConfig(c)
	if err != nil {
		return err
	}
	files, next, err := serviceFiles(bin, cfg.Socket)
	if err != nil {
		return err
	}
	w := c.App.Writer
	if c.Bool("print") {
		for _, f := range files {
			fmt.Fprintf(w, "# --- %s\n%s", f.Path, f.Content)
		}
		return nil
	}
	if err := checkServiceFiles(files, c.Bool("force")); err != nil {
		return err
	}
	for _, f := range files {
		changed, err := writeServiceFile(f)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "%s %s\n", map[bool]string{true: "wrote", false: "unchanged"}[changed], f.Path)
	}
	if p, err := exec.LookPath("tokfence"); err == nil && !sameFile(p, bin) {
		fmt.Fprintf(c.App.ErrWriter, "tokfence: note: the service runs %s, not %s (the tokfence on your PATH); --bin picks another\n", bin, p)
	}
	fmt.Fprintf(w, "next:\n%s\n", next)
	return nil
}

// serviceBinary is the absolute, symlink-free path of the binary the
// service runs: --bin if given, else this one.
func serviceBinary(flag string) (string, error) {
	p := flag
	if p == "" {
		exe, err := os.Executable()
		if err != nil {
			return "", fmt.Errorf("find this binary: %w", err)
		}
		p = exe
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", err
	}
	if real, err := filepath.EvalSymlinks(abs); err == nil {
		abs = real
	}
	fi, err := os.Stat(abs)
	if err != nil || fi.IsDir() || fi.Mode().Perm()&0o111 == 0 {
		return "", withHint(fmt.Errorf("--bin %s is not an executable file", abs), "install tokfence first (`make install`), or pass --bin /path/to/tokfence")
	}
	return abs, nil
}

// checkServiceFiles refuses, before anything is written, to replace a file
// that differs from what would be written, unless force.
func checkServiceFiles(files []serviceFile, force bool) error {
	var differ []string
	for _, f := range files {
		old, err := os.ReadFile(f.Path)
		switch {
		case errors.Is(err, fs.ErrNotExist):
		case err != nil:
			return fmt.Errorf("read %s: %w", f.Path, err)
		case !bytes.Equal(old, []byte(f.Content)):
			differ = append(differ, f.Path)
		}
	}
	if len(differ) > 0 && !force {
		return withHint(fmt.Errorf("%s already exists and differs from what install-service writes; nothing written", strings.Join(differ, " and ")),
			"compare with `tokfence install-service --print`; --force overwrites")
	}
	return nil
}

// writeServiceFile writes f atomically (0644, in a directory it creates)
// and reports whether it changed anything.
func writeServiceFile(f serviceFile) (bool, error) {
	if old, err := os.ReadFile(f.Path); err == nil && string(old) == f.Content {
		return false, nil
	}
	dir := filepath.Dir(f.Path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return false, fmt.Errorf("create %s: %w", dir, err)
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(f.Path)+".*")
	if err != nil {
		return false, fmt.Errorf("write %s: %w", f.Path, err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.WriteString(f.Content)
	if err == nil {
		err = tmp.Chmod(0o644)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), f.Path)
	}
	if err != nil {
		return false, fmt.Errorf("write %s: %w", f.Path, err)
	}
	return true, nil
}

func sameFile(a, b string) bool {
	fa, err1 := os.Stat(a)
	fb, err2 := os.Stat(b)
	return err1 == nil && err2 == nil && os.SameFile(fa, fb)
}

// systemdUnits are the systemd user units for bin: a service that runs
// the daemon, and a socket unit that starts it on the first connection to
// socket (a path, or one under systemd's %t, the runtime directory).
func systemdUnits(bin, socket string) (service, sock string) {
	service = `# Written by ` + "`tokfence install-service`" + `. Run the daemon from login:
#   systemctl --user daemon-reload && systemctl --user enable --now tokfence.service
# or only once something first connects (socket activation):
#   systemctl --user daemon-reload && systemctl --user enable --now tokfence.socket
[Unit]
Description=Tokfence, the secrets broker AI agents run behind
Documentation=man:tokfence(1) https://github.com/tokfence/tokfence
# The keys are in the Secret Service, on the session bus.
After=dbus.socket

[Service]
ExecStart=` + systemdQuote(bin) + ` daemon
Restart=on-failure
RestartSec=5s
UMask=0077

[Install]
WantedBy=default.target
`
	sock = `# Written by ` + "`tokfence install-service`" + `. The daemon checks the socket systemd
# passes as it checks its own: a 0700 directory of ours, the path it is
# configured with, a socket only we can open; it refuses anything else.
[Unit]
Description=Tokfence control socket
Documentation=man:tokfence(1)

[Socket]
ListenStream=` + socket + `
SocketMode=0600
DirectoryMode=0700
RemoveOnStop=yes

[Install]
WantedBy=sockets.target
`
	return service, sock
}

// systemdQuote quotes an ExecStart word that has a space or a specifier.
func systemdQuote(s string) string {
	s = strings.ReplaceAll(s, "%", "%%")
	if !strings.ContainsAny(s, " \t\"'\\") {
		return s
	}
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// systemdSocketPath writes socket relative to %t when it lies under the
// runtime directory, so the unit file is the same for every user.
func systemdSocketPath(socket, runtimeDir string) string {
	if runtimeDir != "" {
		if rel, err := filepath.Rel(runtimeDir, socket); err == nil && !strings.HasPrefix(rel, "..") {
			return "%t/" + filepath.ToSlash(rel)
		}
	}
	return strings.ReplaceAll(socket, "%", "%%")
}

// launchdLabel names the launchd agent; its plist is LABEL.plist.
const launchdLabel = "dev.tokfence.daemon"

// launchdPlist is the launchd agent for bin, logging to logFile.
func launchdPlist(bin, logFile string) string {
	x := html.EscapeString
	return `<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<!-- Written by ` + "`tokfence install-service`" + `. Load it now and at every login:
       launchctl bootstrap gui/$(id -u) ~/Library/LaunchAgents/` + launchdLabel + `.plist
     Stop it: launchctl bootout gui/$(id -u)/` + launchdLabel + ` -->
<plist version="1.0">
<dict>
	<key>Label</key>
	<string>` + launchdLabel + `</string>
	<key>ProgramArguments</key>
	<array>
		<string>` + x(bin) + `</string>
		<string>daemon</string>
	</array>
	<key>RunAtLoad</key>
	<true/>
	<key>KeepAlive</key>
	<dict>
		<key>SuccessfulExit</key>
		<false/>
	</dict>
	<key>ThrottleInterval</key>
	<integer>5</integer>
	<key>ProcessType</key>
	<string>Background</string>
	<key>Umask</key>
	<integer>63</integer>
	<key>StandardOutPath</key>
	<string>` + x(logFile) + `</string>
	<key>StandardErrorPath</key>
	<string>` + x(logFile) + `</string>
</dict>
</plist>
`
}
