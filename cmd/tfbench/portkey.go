package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// The peer is Portkey's open-source AI gateway, the Node gateway a user
// would put between agents and providers instead of Tokfence. With -peers
// the harness installs it with npm into a throwaway directory (nothing
// global, nothing in the tree), runs it with node on a loopback port
// against the same fake upstream, and removes the directory at the end,
// on success, error or SIGINT, like every other child of the run.

// portkeyPackage is the npm package of the open-source gateway.
const portkeyPackage = "@portkey-ai/gateway"

// portkeyPin is the version the README's comparison was measured with.
const portkeyPin = "1.15.2"

// portkeyVersionRE is what -portkey-version accepts: a version or a
// dist-tag such as latest, and nothing npm would read as a flag, a path,
// a URL or a range.
var portkeyVersionRE = regexp.MustCompile(`^[0-9A-Za-z][0-9A-Za-z.+-]*$`)

// portkeyHello is what the gateway answers on GET / once it serves.
const portkeyHello = "AI Gateway says hey!"

// portkey is the installed and running gateway.
type portkey struct {
	dir     string // the throwaway npm prefix; the log lives here too
	version string // as installed, from its package.json
	node    string // `node --version`
	entry   string // the package's bin script
	url     string // http://127.0.0.1:PORT
	proc    *child
	idleRSS int64 // KiB over its process tree, once it answers
}

// nodeTools finds node and npm on PATH and checks that node can preload
// an ES module (--import: 18.19 and 20.6 on), which binds the gateway to
// loopback.
func nodeTools(ctx context.Context) (node, npm, version string, err error) {
	const hint = "-peers installs Portkey's gateway with npm and runs it with node: install Node.js 20 or later with npm (Debian/Ubuntu: apt-get install nodejs npm)"
	if node, err = exec.LookPath("node"); err != nil {
		return "", "", "", fmt.Errorf("node not found on PATH; %s", hint)
	}
	if npm, err = exec.LookPath("npm"); err != nil {
		return "", "", "", fmt.Errorf("npm not found on PATH; %s", hint)
	}
	out, err := exec.CommandContext(ctx, node, "--version").Output()
	if err != nil {
		return "", "", "", fmt.Errorf("%s --version: %w; %s", node, err, hint)
	}
	version = strings.TrimSpace(string(out))
	if err := nodeVersionOK(version); err != nil {
		return "", "", "", fmt.Errorf("%s: %w; %s", node, err, hint)
	}
	return node, npm, version, nil
}

// nodeVersionOK reports, as an error, a `node --version` older than the
// first releases with --import (v18.19.0 and v20.6.0).
func nodeVersionOK(v string) error {
	parts := strings.SplitN(strings.TrimPrefix(v, "v"), ".", 3)
	if len(parts) < 2 {
		return fmt.Errorf("cannot read node version %q", v)
	}
	major, err1 := strconv.Atoi(parts[0])
	minor, err2 := strconv.Atoi(parts[1])
	if err1 != nil || err2 != nil {
		return fmt.Errorf("cannot read node version %q", v)
	}
	if major > 20 || major == 20 && minor >= 6 || major == 19 || major == 18 && minor >= 19 {
		return nil
	}
	return fmt.Errorf("node %s is too old (want v18.19, v20.6 or later)", v)
}

// installPortkey runs `npm install` of the gateway at version (checked
// against portkeyVersionRE by parseFlags) into a new temporary directory,
// which the reaper removes unless keep is set.
// Install scripts are skipped: the package's only one applies patches it
// does not ship.
func installPortkey(ctx context.Context, r *reaper, npm, version string, keep bool) (*portkey, error) {
	dir, err := os.MkdirTemp("", "tfbench-portkey-")
	if err != nil {
		return nil, err
	}
	if keep {
		fmt.Fprintf(os.Stderr, "tfbench: keeping %s\n", dir)
	} else {
		r.later(func() { os.RemoveAll(dir) })
	}
	ictx, cancel := context.WithTimeout(ctx, 5*time.Minute) // a slow registry, not a hung run
	defer cancel()
	cmd := exec.CommandContext(ictx, npm, "install", "--prefix", dir, "--no-audit", "--no-fund",
		"--ignore-scripts", "--loglevel=error", portkeyPackage+"@"+version)
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("npm install %s@%s: %w\n%s", portkeyPackage, version, err, tail(out.String(), 2000))
	}
	pkgDir := filepath.Join(dir, "node_modules", filepath.FromSlash(portkeyPackage))
	b, err := os.ReadFile(filepath.Join(pkgDir, "package.json"))
	if err != nil {
		return nil, fmt.Errorf("npm install %s@%s left no package.json: %w", portkeyPackage, version, err)
	}
	v, bin, err := parsePackage(b)
	if err != nil {
		return nil, fmt.Errorf("%s package.json: %w", portkeyPackage, err)
	}
	return &portkey{dir: dir, version: v, entry: filepath.Join(pkgDir, filepath.FromSlash(bin))}, nil
}

// parsePackage returns the version and the bin script of an npm
// package.json whose "bin" is a path or a map with one entry.
func parsePackage(b []byte) (version, bin string, err error) {
	var p struct {
		Version string          `json:"version"`
		Bin     json.RawMessage `json:"bin"`
	}
	if err := json.Unmarshal(b, &p); err != nil {
		return "", "", err
	}
	if p.Version == "" {
		return "", "", errors.New("no version")
	}
	if json.Unmarshal(p.Bin, &bin) == nil && bin != "" {
		return p.Version, bin, nil
	}
	var bins map[string]string
	if json.Unmarshal(p.Bin, &bins) != nil || len(bins) != 1 {
		return "", "", fmt.Errorf("want one bin script, have %s", p.Bin)
	}
	for _, s := range bins {
		bin = s
	}
	return p.Version, bin, nil
}

// loopbackPreload is loaded into the gateway with node --import. The
// gateway listens on every interface and has no option to choose one; a
// benchmark must not open a port to the network, so every listen on a
// bare port is bound to 127.0.0.1.
const loopbackPreload = `// written by tfbench: bind the gateway's listener to 127.0.0.1
import net from "node:net";
const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  if (typeof args[0] === "number") {
    if (args[1] === undefined || args[1] === null) args[1] = "127.0.0.1";
    else if (typeof args[1] === "function") args.splice(1, 0, "127.0.0.1");
  }
  return listen.apply(this, args);
};
`

// start runs the gateway with node on a free loopback port, with stdout
// and stderr in its log, and waits until it answers GET /.
func (p *portkey) start(ctx context.Context, r *reaper, node string) error {
	preload := filepath.Join(p.dir, "loopback.mjs")
	if err := os.WriteFile(preload, []byte(loopbackPreload), 0o600); err != nil {
		return err
	}
	port, err := freePort()
	if err != nil {
		return err
	}
	logf, err := os.Create(filepath.Join(p.dir, "portkey.log"))
	if err != nil {
		return err
	}
	r.later(func() { logf.Close() })
	// --headless: no web UI; the request path is the same with or without.
	cmd := exec.Command(node, "--import", "file://"+preload, p.entry, "--port="+strconv.Itoa(port), "--headless")
	cmd.Dir = p.dir
	cmd.Env = nodeEnv()
	cmd.Stdout, cmd.Stderr = logf, logf
	if p.proc, err = r.start("portkey gateway", cmd, 5*time.Second); err != nil {
		return err
	}
	p.url = "http://127.0.0.1:" + strconv.Itoa(port)
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if p.proc.exited() {
			return fmt.Errorf("portkey gateway exited at start: %v; log:\n%s", p.proc.err, p.logTail(2000))
		}
		if portkeyAnswers(ctx, p.url) {
			p.idleRSS, _ = treeRSS(p.proc.pid())
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return fmt.Errorf("portkey gateway did not answer on %s within 30s; log:\n%s", p.url, p.logTail(2000))
}

// portkeyAnswers reports whether the gateway at base serves its greeting.
func portkeyAnswers(ctx context.Context, base string) bool {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/", nil)
	resp, err := statsClient.Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
	return portkeyReady(resp.StatusCode, b)
}

// portkeyReady reports whether a reply to GET / is the gateway's greeting.
func portkeyReady(status int, body []byte) bool {
	return status == http.StatusOK && strings.TrimSpace(string(body)) == portkeyHello
}

// portkeyHeaders are the headers that route a request through the gateway
// to the openai provider at upstream, the fake: Portkey appends the
// endpoint (/chat/completions) to the custom host, and forwards the
// client's Authorization as the provider key. The gateway trusts loopback
// custom hosts by default (TRUSTED_CUSTOM_HOSTS).
func portkeyHeaders(upstream string) http.Header {
	h := http.Header{}
	h.Set("X-Portkey-Provider", "openai")
	h.Set("X-Portkey-Custom-Host", strings.TrimSuffix(upstream, "/")+"/v1")
	return h
}

// nodeEnv is the harness's environment without what would change how
// the gateway runs or where it sends requests: proxies (Portkey honours
// HTTP_PROXY and HTTPS_PROXY) and NODE_OPTIONS.
func nodeEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		switch strings.ToUpper(name) {
		case "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "NODE_OPTIONS", "NODE_ENV", "TRUSTED_CUSTOM_HOSTS":
			continue
		}
		out = append(out, kv)
	}
	return out
}

func (p *portkey) logTail(n int) string {
	b, _ := os.ReadFile(filepath.Join(p.dir, "portkey.log"))
	return tail(string(b), n)
}

func tail(s string, n int) string {
	if len(s) > n {
		s = s[len(s)-n:]
	}
	return s
}

// freePort asks the kernel for a free loopback port. Another process may
// take it before the gateway binds it; the gateway then exits at start
// and the run says so.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
