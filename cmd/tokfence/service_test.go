package main

import (
	"bytes"
	"encoding/xml"
	"flag"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

var updateContrib = flag.Bool("update-contrib", false, "rewrite contrib/ from what install-service writes")

// contribFiles are the reference copies in contrib/, generated for a
// binary in /usr/local/bin; install-service writes the real ones.
func contribFiles() map[string]string {
	service, sock := systemdUnits("/usr/local/bin/tokfence", "%t/tokfence/tokfence.sock")
	return map[string]string{
		"systemd/tokfence.service":           service,
		"systemd/tokfence.socket":            sock,
		"launchd/" + launchdLabel + ".plist": launchdPlist("/usr/local/bin/tokfence", "/Users/you/Library/Logs/tokfence.log"),
	}
}

// TestContribFiles keeps contrib/ what the binary generates; run with
// -update-contrib after changing the units.
func TestContribFiles(t *testing.T) {
	for name, want := range contribFiles() {
		path := filepath.Join("..", "..", "contrib", name)
		if *updateContrib {
			os.MkdirAll(filepath.Dir(path), 0o755)
			if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(path)
		if err != nil || string(got) != want {
			t.Errorf("contrib/%s is not what install-service writes (go test -run TestContribFiles -update-contrib ./cmd/tokfence/ rewrites it): %v", name, err)
		}
	}
}

// TestSystemdUnitsVerify has systemd-analyze check the units that
// `install-service --print` shows, with this test's binary as ExecStart.
func TestSystemdUnitsVerify(t *testing.T) {
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Skip("systemd-analyze is not installed")
	}
	e := newCLIEnv(t, nil)
	r := e.run("", "install-service", "--print", "--bin", binPath)
	if r.code != 0 {
		t.Fatalf("install-service --print = %+v", r)
	}
	dir := t.TempDir()
	var names []string
	for _, part := range strings.Split(r.stdout, "# --- ")[1:] {
		head, body, _ := strings.Cut(part, "\n")
		name := filepath.Join(dir, filepath.Base(head))
		os.WriteFile(name, []byte(body), 0o644)
		names = append(names, name)
	}
	if len(names) != 2 || !strings.HasSuffix(names[0], "tokfence.service") || !strings.HasSuffix(names[1], "tokfence.socket") {
		t.Fatalf("install-service --print wrote %q, want tokfence.service and tokfence.socket", names)
	}
	out, err := exec.Command("systemd-analyze", append([]string{"verify", "--man=no"}, names...)...).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// TestLaunchdPlist checks that the plist is well-formed XML that runs
// `BIN daemon`, with the paths escaped.
func TestLaunchdPlist(t *testing.T) {
	p := launchdPlist("/Applications/A & B/tokfence", "/Users/you/Library/Logs/tokfence.log")
	d := xml.NewDecoder(strings.NewReader(p))
	var strs []string
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("plist is not well-formed XML: %v\n%s", err, p)
		}
		if cd, ok := tok.(xml.CharData); ok && strings.TrimSpace(string(cd)) != "" {
			strs = append(strs, string(cd))
		}
	}
	joined := strings.Join(strs, "|")
	for _, want := range []string{"Label|" + launchdLabel, "ProgramArguments|/Applications/A & B/tokfence|daemon", "Umask|63"} {
		if !strings.Contains(joined, want) {
			t.Errorf("plist lacks %q: %s", want, joined)
		}
	}
}

func TestSystemdQuote(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"/usr/local/bin/tokfence", "/usr/local/bin/tokfence"},
		{"/opt/my tools/tokfence", `"/opt/my tools/tokfence"`},
		{"/opt/100%/tokfence", "/opt/100%%/tokfence"},
	} {
		if got := systemdQuote(tc.in); got != tc.want {
			t.Errorf("systemdQuote(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	if got := systemdSocketPath("/run/user/1000/tokfence/tokfence.sock", "/run/user/1000"); got != "%t/tokfence/tokfence.sock" {
		t.Errorf("socket under the runtime dir = %q, want %%t/tokfence/tokfence.sock", got)
	}
	if got := systemdSocketPath("/home/u/.tokfence/run/tokfence.sock", "/run/user/1000"); got != "/home/u/.tokfence/run/tokfence.sock" {
		t.Errorf("socket elsewhere = %q, want it as is", got)
	}
}
