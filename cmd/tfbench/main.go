// Command tfbench is the load harness behind `make bench`. In one bounded
// run on loopback it measures Tokfence, started as a real separate process
// with a private D-Bus and gnome-keyring, against a fake upstream reached
// directly and through a bare httputil.ReverseProxy, interleaving the
// variants in small batches so that machine noise hits all alike:
//
//	go run ./cmd/tfbench -quick        # CI smoke, under a minute
//	go run ./cmd/tfbench               # a few minutes on 2 cores
//	go run ./cmd/tfbench -peers        # beside Portkey's gateway (npm, node)
//
// It prints a table with ratios to direct and to the bare proxy, writes the
// same as JSON (bench/results.json; bench/peers.json for -peers), and stops
// every child it started and removes every directory it made, on success,
// error or SIGINT.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// options are the run's knobs; -quick and -peers change the defaults of
// those not given explicitly.
type options struct {
	quick          bool
	out            string
	seq, batch     int
	conc           []int
	rounds         int
	slice          time.Duration
	streams        int
	events         int
	every          time.Duration
	open           int
	kills          int
	cliKills       int
	fsync          bool
	goroutines     bool
	timeout        time.Duration
	keep           bool
	tokfence       string
	peers          bool
	portkeyVersion string
}

// errReported is a flag error the flag package has already printed.
var errReported = errors.New("flag error")

func parseFlags(args []string) (options, string, string, error) {
	var o options
	fs := flag.NewFlagSet("tfbench", flag.ContinueOnError)
	fs.BoolVar(&o.quick, "quick", false, "small counts for a CI smoke run (< 60 s)")
	fs.StringVar(&o.out, "out", "bench/results.json", "write the results as JSON to `FILE`")
	fs.IntVar(&o.seq, "seq", 3000, "sequential requests per variant")
	fs.IntVar(&o.batch, "batch", 50, "requests per variant before switching to the next")
	concs := fs.String("conc", "16,64,256", "concurrency levels, comma-separated")
	fs.IntVar(&o.rounds, "rounds", 4, "interleaved rounds per concurrency level")
	fs.DurationVar(&o.slice, "slice", 1500*time.Millisecond, "load time per variant per round")
	fs.IntVar(&o.streams, "streams", 15, "SSE streams per variant")
	fs.IntVar(&o.events, "events", 200, "events per SSE stream")
	fs.DurationVar(&o.every, "every", 2*time.Millisecond, "upstream interval between SSE events")
	fs.IntVar(&o.open, "open", 1000, "streams held open at once for the memory measurement")
	fs.IntVar(&o.kills, "kills", 20, "kill-to-cut repetitions through the control API")
	fs.IntVar(&o.cliKills, "cli-kills", 5, "kill-to-cut repetitions through `tokfence kill`")
	fs.BoolVar(&o.fsync, "fsync", true, `also run daemons with audit_fsync = "interval" (the default) and "always" as variants`)
	fs.BoolVar(&o.goroutines, "goroutines", true, "count the daemon's goroutines with a SIGQUIT dump at the end (ends the daemon)")
	fs.DurationVar(&o.timeout, "timeout", 10*time.Minute, "hard limit for the whole run")
	fs.StringVar(&o.tokfence, "tokfence", "", "use this prebuilt tokfence `BINARY` instead of building ./cmd/tokfence")
	fs.BoolVar(&o.keep, "keep", false, "keep the temporary directories (daemon logs, audit trail, the peer's install)")
	fs.BoolVar(&o.peers, "peers", false, "run only the peer comparison: Tokfence (default config and audit_fsync = \"never\") beside "+
		"Portkey's gateway, installed with npm into a throwaway directory, the bare proxy and direct; needs node and npm")
	fs.StringVar(&o.portkeyVersion, "portkey-version", portkeyPin, "with -peers, the `VERSION` (or dist-tag) of "+portkeyPackage+" to install")
	role := fs.String("role", "", "internal: run as the fake upstream or the bare proxy")
	target := fs.String("target", "", "internal: the bare proxy's upstream")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return o, "", "", err
		}
		return o, "", "", errReported
	}
	if fs.NArg() > 0 {
		return o, "", "", fmt.Errorf("unexpected argument %q (flags only; see -h)", fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if o.peers {
		if err := peerDefaults(&o, concs, set); err != nil {
			return o, "", "", err
		}
	} else if set["portkey-version"] {
		return o, "", "", errors.New("-portkey-version needs -peers")
	}
	if o.quick && !o.peers {
		quick := map[string]func(){
			"seq": func() { o.seq = 300 }, "batch": func() { o.batch = 25 }, "conc": func() { *concs = "16,64" },
			"rounds": func() { o.rounds = 1 }, "slice": func() { o.slice = 400 * time.Millisecond },
			"streams": func() { o.streams = 2 }, "open": func() { o.open = 200 }, "kills": func() { o.kills = 5 },
			"cli-kills": func() { o.cliKills = 1 }, "timeout": func() { o.timeout = 2 * time.Minute },
		}
		for name, apply := range quick {
			if !set[name] {
				apply()
			}
		}
	}
	for _, s := range strings.Split(*concs, ",") {
		c, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || c < 1 {
			return o, "", "", fmt.Errorf("-conc %q: want positive integers", *concs)
		}
		o.conc = append(o.conc, c)
	}
	switch {
	case o.seq < 1 || o.batch < 1 || o.rounds < 1:
		return o, "", "", fmt.Errorf("-seq, -batch and -rounds: want at least 1 (have %d, %d, %d)", o.seq, o.batch, o.rounds)
	case o.slice <= 0:
		return o, "", "", fmt.Errorf("-slice %s: want a positive duration", o.slice)
	case o.peers && len(o.conc) != 1:
		return o, "", "", fmt.Errorf("-conc %q: -peers measures one concurrency level", *concs)
	}
	return o, *role, *target, nil
}

// peerDefaults sets the -peers defaults of the flags not given (those of
// the measurement the README quotes, or a smoke run's with -quick) and
// refuses the flags of the phases -peers does not run.
func peerDefaults(o *options, concs *string, set map[string]bool) error {
	for _, name := range []string{"streams", "events", "every", "open", "kills", "cli-kills", "fsync", "goroutines"} {
		if set[name] {
			return fmt.Errorf("-%s has no effect with -peers, which runs only the peer comparison", name)
		}
	}
	if !portkeyVersionRE.MatchString(o.portkeyVersion) {
		return fmt.Errorf("-portkey-version %q: want a version such as %s or a dist-tag such as latest", o.portkeyVersion, portkeyPin)
	}
	defaults := map[string]func(){
		"seq": func() { o.seq = 2000 }, "conc": func() { *concs = "16" }, "rounds": func() { o.rounds = 3 },
		"slice": func() { o.slice = 8 * time.Second }, "out": func() { o.out = "bench/peers.json" },
	}
	if o.quick {
		defaults["seq"] = func() { o.seq = 300 }
		defaults["rounds"] = func() { o.rounds = 1 }
		defaults["slice"] = func() { o.slice = time.Second }
		defaults["timeout"] = func() { o.timeout = 4 * time.Minute } // npm install included
	}
	for name, apply := range defaults {
		if !set[name] {
			apply()
		}
	}
	return nil
}

func main() {
	o, role, target, err := parseFlags(os.Args[1:])
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		if !errors.Is(err, errReported) {
			fmt.Fprintf(os.Stderr, "tfbench: error: %v\n", err)
		}
		os.Exit(2)
	}
	if role != "" {
		if err := runChild(role, target); err != nil {
			fmt.Fprintf(os.Stderr, "tfbench %s: %v\n", role, err)
			os.Exit(1)
		}
		return
	}
	os.Exit(run(o))
}

// run does the whole benchmark and returns the exit code. Every child and
// temporary file is gone when it returns.
func run(o options) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	r := &reaper{}
	defer r.run()
	res, err := bench(ctx, r, o)
	if err != nil {
		if ctx.Err() != nil {
			fmt.Fprintf(os.Stderr, "tfbench: stopped early (%v); no results written\n", context.Cause(ctx))
			return 130
		}
		fmt.Fprintf(os.Stderr, "tfbench: error: %v\n", err)
		return 1
	}
	res.print(os.Stdout)
	if err := res.write(o.out); err != nil {
		fmt.Fprintf(os.Stderr, "tfbench: error: write %s: %v\n", o.out, err)
		return 1
	}
	fmt.Printf("results written to %s\n", o.out)
	return 0
}

// env is what the phases share: the children and the variants.
type env struct {
	upstream, bare string
	bareSock       string // the bare proxy's Unix socket
	upChild        *child
	bareChild      *child
	tf             *tokfence
	tfSync         []*tokfence
	vs             []*variant
	// for the fresh processes of the open-streams phase
	r        *reaper
	kr       *keyring
	bin, dir string
}

func setup(ctx context.Context, r *reaper, o options) (*env, error) {
	e, err := setupCommon(ctx, r, o)
	if err != nil {
		return nil, err
	}
	step(ctx, "starting tokfence daemons")
	if e.tf, err = startTokfence(ctx, r, e.kr, e.bin, e.dir, "nosync", e.upstream, fsyncOff); err != nil {
		return nil, err
	}
	if o.fsync {
		for _, s := range []struct {
			name string
			f    auditFsync
		}{{"interval", fsyncDefault}, {"always", fsyncOn}} {
			tf, err := startTokfence(ctx, r, e.kr, e.bin, e.dir, s.name, e.upstream, s.f)
			if err != nil {
				return nil, err
			}
			e.tfSync = append(e.tfSync, tf)
		}
	}
	e.vs = newVariants(e.upstream, e.bare, e.bareSock, e.bareChild.pid(), e.tf, e.tfSync...)
	return e, nil
}

// setupCommon builds (or takes) the tokfence binary and starts the fake
// upstream, the bare proxy and the private keyring; the daemons are the
// caller's.
func setupCommon(ctx context.Context, r *reaper, o options) (*env, error) {
	if _, err := os.Stat("cmd/tokfence"); err != nil && o.tokfence == "" {
		return nil, errors.New("run tfbench from the module root (it builds ./cmd/tokfence), or pass -tokfence BINARY")
	}
	dir, err := os.MkdirTemp("", "tfbench-")
	if err != nil {
		return nil, err
	}
	if o.keep {
		fmt.Fprintf(os.Stderr, "tfbench: keeping %s\n", dir)
	} else {
		r.later(func() { os.RemoveAll(dir) })
	}
	bin := o.tokfence
	if bin == "" {
		step(ctx, "building ./cmd/tokfence")
		if bin, err = buildTokfence(ctx, dir); err != nil {
			return nil, err
		}
	} else if bin, err = filepath.Abs(bin); err != nil {
		return nil, err
	}
	e := &env{r: r, bin: bin, dir: dir}
	if e.upstream, e.upChild, err = startSelf(r, "upstream", ""); err != nil {
		return nil, err
	}
	if e.bare, e.bareChild, err = startSelf(r, "bare", e.upstream); err != nil {
		return nil, err
	}
	if e.bareSock, err = readLine(e.bareChild.stdout, 10*time.Second); err != nil {
		return nil, fmt.Errorf("bare child: its socket: %w", err)
	}
	step(ctx, "starting a private D-Bus and gnome-keyring")
	if e.kr, err = startKeyring(ctx, r, dir); err != nil {
		return nil, err
	}
	return e, nil
}

// startSelf runs this binary as a child in role and returns its URL. The
// child exits when its stdin (held by us) closes.
func startSelf(r *reaper, role, target string) (string, *child, error) {
	self, err := os.Executable()
	if err != nil {
		return "", nil, err
	}
	cmd := exec.Command(self, "-role", role, "-target", target)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return "", nil, err
	}
	in, err := cmd.StdinPipe()
	if err != nil {
		return "", nil, err
	}
	c, err := r.start(role, cmd, 5*time.Second)
	if err != nil {
		return "", nil, err
	}
	r.later(func() { in.Close() })
	c.stdout = bufio.NewReader(out)
	addr, err := readLine(c.stdout, 10*time.Second)
	if err != nil {
		return "", nil, fmt.Errorf("%s child: %w", role, err)
	}
	return "http://" + addr, c, nil
}

func step(ctx context.Context, msg string) {
	if ctx.Err() == nil {
		fmt.Fprintf(os.Stderr, "tfbench: %s %s\n", time.Now().Format("15:04:05"), msg)
	}
}

func bench(ctx context.Context, r *reaper, o options) (*results, error) {
	res := &results{Meta: meta{Started: time.Now(), Args: os.Args[1:], Quick: o.quick, GoVersion: runtime.Version(),
		NumCPU: runtime.NumCPU(), LoadBefore: loadavg(), Commit: gitCommit()}}
	if o.peers {
		return benchPeers(ctx, r, o, res)
	}
	e, err := setup(ctx, r, o)
	if err != nil {
		return nil, err
	}
	res.Meta.DaemonRSSKB = e.tf.idleRSS
	res.Meta.AuditFsync = `tokfence-* variants run with audit_fsync = "never"`
	if e.tfSync != nil {
		res.Meta.AuditFsync += `; tokfence-tcp-interval runs the default (audit_fsync = "interval"), tokfence-tcp-always audit_fsync = "always"`
	}
	res.Meta.Note = "loopback only, on a machine shared with other processes; the harness (load generator), the fake " +
		"upstream, the bare proxy and the daemons all compete for the same CPUs, so absolute numbers are noisy and the " +
		"ratios (variants interleaved in small batches) are what to read"
	if err := phases(ctx, o, e, res); err != nil {
		return nil, err
	}
	res.Goals = goals(res, o.every)
	res.Meta.LoadAfter = loadavg()
	res.Meta.Seconds = round2(time.Since(res.Meta.Started).Seconds())
	return res, nil
}

func gitCommit() string {
	out, err := exec.Command("git", "describe", "--always", "--dirty").Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}
