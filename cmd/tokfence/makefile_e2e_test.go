package main

import (
	"bufio"
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// repoRoot is the module root, where the Makefile is.
var repoRoot = filepath.Join("..", "..")

// needMake skips without make, except where make deps ran.
func needMake(t *testing.T) {
	t.Helper()
	needTool(t, "make")
}

// TestMakeInstall installs under a PREFIX and uninstalls again: the
// binary, the man page and the three completions, with a note when the
// bin directory is not on PATH. The build step is skipped (-o build) and
// this test's binary installed in its place: a real build takes minutes here.
func TestMakeInstall(t *testing.T) {
	needMake(t)
	prefix := t.TempDir()
	make := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("make", append([]string{"-s", "-C", repoRoot, "-o", "build", "BIN=" + binPath, "PREFIX=" + prefix}, args...)...)
		cmd.Env = append(os.Environ(), "PATH=/usr/bin:/bin")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("make %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	out := make("install")
	if !strings.Contains(out, prefix+"/bin is not on your PATH; add it") {
		t.Errorf("make install with its bin dir off PATH says %q, want how to put it on PATH", out)
	}
	want := map[string]string{
		"bin/tokfence": "", "share/man/man1/tokfence.1": ".TH TOKFENCE 1",
		"share/bash-completion/completions/tokfence":    "complete -F _tokfence tokfence",
		"share/zsh/site-functions/_tokfence":            "#compdef tokfence",
		"share/fish/vendor_completions.d/tokfence.fish": "complete -c tokfence",
	}
	for name, content := range want {
		b, err := os.ReadFile(filepath.Join(prefix, name))
		if err != nil || !bytes.Contains(b, []byte(content)) {
			t.Errorf("make install: %s: %v, want it with %q", name, err, content)
		}
	}
	if v, err := exec.Command(filepath.Join(prefix, "bin", "tokfence"), "version").Output(); err != nil || !strings.HasPrefix(string(v), "tokfence ") {
		t.Errorf("installed tokfence version = %q, %v", v, err)
	}
	make("uninstall")
	filepath.WalkDir(prefix, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			t.Errorf("make uninstall left %s", p)
		}
		return nil
	})
}

// TestMakeInstallPrefix checks the default PREFIX: /usr/local for root,
// ~/.local for anyone else (run as uid 65534 when this test is root).
func TestMakeInstallPrefix(t *testing.T) {
	needMake(t)
	dryRun := func(home string, asNobody bool) string {
		args := []string{"make", "-n", "-f", filepath.Join(must(filepath.Abs(repoRoot)), "Makefile"), "-o", "build", "install", "HOME=" + home}
		if asNobody {
			args = append([]string{"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"}, args...)
		}
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Dir = home
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	home := t.TempDir()
	os.Chmod(home, 0o777)
	if os.Getuid() != 0 {
		if out := dryRun(home, false); !strings.Contains(out, "install -m 0755 bin/tokfence "+home+"/.local/bin/tokfence") {
			t.Errorf("make -n install as a user:\n%s\nwant it into ~/.local/bin", out)
		}
		return
	}
	if out := dryRun(home, false); !strings.Contains(out, "install -m 0755 bin/tokfence /usr/local/bin/tokfence") {
		t.Errorf("make -n install as root:\n%s\nwant it into /usr/local/bin", out)
	}
	needTool(t, "setpriv")
	if out := dryRun(home, true); !strings.Contains(out, "install -m 0755 bin/tokfence "+home+"/.local/bin/tokfence") {
		t.Errorf("make -n install as uid 65534:\n%s\nwant it into ~/.local/bin", out)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// TestMakeRunFlags checks what make run passes: loopback TCP by default
// (exec --no-fence and grant --format env need it), TCP= for none, and
// TOKFENCE_TCP honoured.
func TestMakeRunFlags(t *testing.T) {
	needMake(t)
	for _, tc := range []struct {
		args []string
		env  string
		want string
	}{
		{nil, "", "KEYRING='auto' tools/run/run.sh " + "BIN --tcp 127.0.0.1:9471\n"},
		{[]string{"TCP="}, "", "KEYRING='auto' tools/run/run.sh BIN\n"},
		{[]string{"KEYRING=throwaway"}, "", "KEYRING='throwaway' tools/run/run.sh BIN --tcp 127.0.0.1:9471\n"},
		{nil, "TOKFENCE_TCP=127.0.0.1:7000", "tools/run/run.sh BIN --tcp 127.0.0.1:7000\n"},
	} {
		cmd := exec.Command("make", append([]string{"-n", "-s", "-C", repoRoot, "-o", "build", "-o", "deps", "run", "BIN=/BIN"}, tc.args...)...)
		cmd.Env = append(os.Environ(), tc.env)
		out, err := cmd.CombinedOutput()
		got := strings.TrimSpace(strings.ReplaceAll(string(out), "/BIN", "BIN"))
		if err != nil || !strings.HasSuffix(got, strings.TrimSpace(tc.want)) {
			t.Errorf("make -n run %v (%s) = %q, %v; want it to end %q", tc.args, tc.env, got, err, tc.want)
		}
	}
}

// runScript is tools/run/run.sh running the daemon, as make run starts it.
type runScript struct {
	t    *testing.T
	cmd  *exec.Cmd
	out  *lockedBuffer
	done chan error
}

// lockedBuffer is a bytes.Buffer the script writes while the test reads.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func startRunScript(t *testing.T, e *cliEnv, extraEnv ...string) *runScript {
	t.Helper()
	cmd := exec.Command(filepath.Join(repoRoot, "tools", "run", "run.sh"), binPath, "--tcp", "127.0.0.1:0")
	cmd.Env = append(append(e.env, "TMPDIR="+filepath.Join(e.home, "tmp")), extraEnv...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // a terminal's foreground group, to Ctrl-C
	out := new(lockedBuffer)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r := &runScript{t: t, cmd: cmd, out: out, done: make(chan error, 1)}
	go func() { r.done <- cmd.Wait() }()
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		killUnder(e.home)
		r.stop(syscall.SIGKILL, true)
	})
	return r
}

// waitReady waits until the daemon answers status.
func (r *runScript) waitReady(e *cliEnv) {
	r.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if res := e.run("", "status"); res.code == 0 {
			return
		}
		select {
		case err := <-r.done:
			r.done <- err
			r.t.Fatalf("run.sh exited: %v\n%s", err, r.out)
		case <-time.After(100 * time.Millisecond):
		}
	}
	r.t.Fatalf("the daemon of run.sh is not ready:\n%s", r.out)
}

// stop signals the script (or, as Ctrl-C does, its whole process group)
// and waits for it.
func (r *runScript) stop(sig syscall.Signal, group bool) error {
	pid := r.cmd.Process.Pid
	if group {
		pid = -pid
	}
	syscall.Kill(pid, sig)
	select {
	case err := <-r.done:
		r.done <- err
		return err
	case <-time.After(20 * time.Second):
		r.cmd.Process.Kill()
		r.t.Errorf("run.sh did not stop on %v:\n%s", sig, r.out)
		return nil
	}
}

// killUnder kills what a failed test may have left running: the
// processes of the run (bus, keyring, daemon), which all have dir in their
// command line or environment.
func killUnder(dir string) {
	for _, p := range processesUnder(dir) {
		syscall.Kill(p.pid, syscall.SIGKILL)
	}
}

type process struct {
	pid     int
	cmdline string
}

func processesUnder(dir string) []process {
	var out []process
	procs, _ := filepath.Glob("/proc/[0-9]*")
	for _, p := range procs {
		pid, err := strconv.Atoi(filepath.Base(p))
		if err != nil || pid == os.Getpid() {
			continue
		}
		cmdline, _ := os.ReadFile(filepath.Join(p, "cmdline"))
		environ, _ := os.ReadFile(filepath.Join(p, "environ"))
		if bytes.Contains(cmdline, []byte(dir)) || bytes.Contains(environ, []byte(dir)) {
			out = append(out, process{pid, strings.ReplaceAll(string(cmdline), "\x00", " ")})
		}
	}
	return out
}

// keyringEnv reads the env file run.sh writes for other shells.
func keyringEnv(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("run.sh wrote no %s for other shells: %v", path, err)
	}
	defer f.Close()
	var env []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if kv, ok := strings.CutPrefix(sc.Text(), "export "); ok {
			k, v, _ := strings.Cut(kv, "=")
			env = append(env, k+"="+strings.Trim(v, "'"))
		}
	}
	return env
}

// TestMakeRunKeepsItsKeyring runs what make run runs, twice, on a box
// without a desktop keyring: a key set in between survives; the keyring
// is in the state directory (0700, its password 0600) and nowhere in the
// temp dir; Ctrl-C stops daemon, bus and keyring; KEYRING=throwaway
// leaves nothing at all; a keyring directory others can read is refused.
func TestMakeRunKeepsItsKeyring(t *testing.T) {
	needTool(t, "dbus-daemon", "gnome-keyring-daemon", "dbus-send", "setsid")
	e := newCLIEnv(t, nil)
	os.Mkdir(filepath.Join(e.home, "tmp"), 0o700)
	state := filepath.Join(e.home, ".local", "state", "tokfence")
	kr := filepath.Join(state, "keyring")

	r := startRunScript(t, e)
	r.waitReady(e)
	for _, w := range []string{"make run: private keyring in " + kr, ". " + kr + "/env"} {
		if !strings.Contains(r.out.String(), w) {
			t.Errorf("run.sh output lacks %q:\n%s", w, r.out)
		}
	}
	shell2 := &cliEnv{t: t, home: e.home, socket: e.socket, env: append(append([]string{}, e.env...), keyringEnv(t, filepath.Join(kr, "env"))...)}
	if res := shell2.run(testOpenAIKey+"\n", "key", "set", "openai"); res.code != 0 || !strings.Contains(res.stdout, "the running daemon uses it") {
		t.Fatalf("key set from another shell = %+v", res)
	}
	for path, mode := range map[string]fs.FileMode{kr: 0o700, filepath.Join(kr, "password"): 0o600} {
		if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != mode {
			t.Errorf("%s: %v, mode %v; want %v", path, err, fi.Mode().Perm(), mode)
		}
	}
	if err := r.stop(syscall.SIGINT, true); err != nil {
		t.Fatalf("run.sh after Ctrl-C: %v\n%s", err, r.out)
	}
	assertNothingLeft(t, e, kr, "bus", "env", "run")

	r = startRunScript(t, e)
	r.waitReady(e)
	if res := e.run("", "status", "--json"); !strings.Contains(res.stdout, `"openai"`) {
		t.Fatalf("the second run's daemon lost the key: status = %+v\n%s", res, r.out)
	}
	shell2.env = append(append([]string{}, e.env...), keyringEnv(t, filepath.Join(kr, "env"))...)
	if res := shell2.run("", "key", "ls"); res.code != 0 || !strings.Contains(res.stdout, "sk-proj-…WXYZ") {
		t.Fatalf("key ls on the second run = %+v", res)
	}
	if err := r.stop(syscall.SIGTERM, false); err != nil {
		t.Fatalf("run.sh after SIGTERM: %v\n%s", err, r.out)
	}
	assertNothingLeft(t, e, kr, "bus", "env", "run")

	r = startRunScript(t, e, "KEYRING=throwaway")
	r.waitReady(e)
	tmp, _ := filepath.Glob(filepath.Join(state, "keyring-throwaway.*"))
	if len(tmp) != 1 {
		t.Fatalf("KEYRING=throwaway made %q, want one directory under %s", tmp, state)
	}
	throwaway := append(append([]string{}, e.env...), keyringEnv(t, filepath.Join(tmp[0], "env"))...)
	if res := (&cliEnv{t: t, env: throwaway}).run(testOpenAIKey+"\n", "key", "set", "openai"); res.code != 0 {
		t.Fatalf("key set in the throwaway keyring = %+v", res)
	}
	if err := r.stop(syscall.SIGINT, true); err != nil {
		t.Fatalf("throwaway run.sh after Ctrl-C: %v\n%s", err, r.out)
	}
	if _, err := os.Stat(tmp[0]); !os.IsNotExist(err) {
		t.Errorf("KEYRING=throwaway left %s: %v", tmp[0], err)
	}
	assertNothingLeft(t, e, kr, "bus", "env", "run")

	os.Chmod(kr, 0o755)
	r = startRunScript(t, e)
	if err := <-r.done; err == nil || !strings.Contains(r.out.String(), "has mode 755") || !strings.Contains(r.out.String(), "chmod 700 "+kr) {
		t.Errorf("run.sh on a 0755 keyring dir = %v\n%s, want a refusal naming chmod 700", err, r.out)
	}
	r.done <- nil
}

// assertNothingLeft checks that a stopped run left no process, no file in
// the temp dir and none of names in the keyring directory.
func assertNothingLeft(t *testing.T, e *cliEnv, kr string, names ...string) {
	t.Helper()
	for _, n := range names {
		if _, err := os.Lstat(filepath.Join(kr, n)); !os.IsNotExist(err) {
			t.Errorf("a stopped run left %s/%s", kr, n)
		}
	}
	if left, _ := os.ReadDir(filepath.Join(e.home, "tmp")); len(left) > 0 {
		t.Errorf("a stopped run left %d entries in TMPDIR, e.g. %s", len(left), left[0].Name())
	}
	if res := e.run("", "status"); res.code == 0 {
		t.Errorf("the daemon still answers after run.sh stopped")
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		var alive []string
		for _, p := range processesUnder(e.home) {
			alive = append(alive, p.cmdline)
		}
		if len(alive) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("a stopped run left processes: %q", alive)
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}
