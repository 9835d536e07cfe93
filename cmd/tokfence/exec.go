package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/tokfence/tokfence/daemon"
	"github.com/tokfence/tokfence/daemon/api"
	"github.com/tokfence/tokfence/daemon/ctl"
	"github.com/tokfence/tokfence/daemon/fence"
	"github.com/tokfence/tokfence/daemon/layout"
)

func execCommand() *cli.Command {
	return &cli.Command{
		Name:  "exec",
		Usage: "run an agent in a fence whose only way out is this session, with its token where its SDKs look",
		UsageText: "tokfence exec [--no-fence] --agent NAME --provider P [scope flags] -- CMD [ARGS...]\n\nExamples:\n" +
			"   tokfence exec --agent coder --provider anthropic --ttl 1h -- my-agent --task x\n" +
			"   tokfence exec --no-fence --agent legacy --provider openai -- ./agent   # unfenced: marked so everywhere",
		Flags: append(scopeFlags(),
			&cli.BoolFlag{Name: "no-fence", Usage: "run the agent unfenced (it can then reach the keychain, the control socket and the network; the session is marked unfenced)"}),
		Action: runExec,
	}
}

func runExec(c *cli.Context) error {
	if c.NArg() == 0 {
		return withHint(errors.New("no command to run"), "put the agent's command after `--`: tokfence exec --agent a --provider openai -- my-agent")
	}
	cfg, err := loadConfig(c)
	if err != nil {
		return err
	}
	providers, err := daemon.BuildProviders(cfg.Providers)
	if err != nil {
		return err
	}
	cl := ctl.New(cfg.Socket)
	req := grantRequest(c)
	req.BindPeer = true // the daemon kills the session when this process exits, however it exits
	// Signals are the agent's from here on: one that arrives before the
	// agent exists (while the session is minted) waits for it, rather
	// than killing exec with its default action.
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, fence.ForwardedSignals...)
	defer signal.Stop(sigs)
	if c.Bool("no-fence") || !cfg.Fence.Enabled {
		return runUnfenced(c, cl, req, providers, cfg, sigs)
	}
	return runFenced(c, cl, req, providers, cfg, sigs)
}

// runFenced starts the fence (its init waits), mints the session bound to
// it, then lets the init build the fence around the agent.
func runFenced(c *cli.Context, cl *ctl.Client, req api.GrantRequest, providers daemon.Providers, cfg daemon.Config, sigs <-chan os.Signal) error {
	if !fence.Supported {
		return withHint(errors.New("this platform has no fence"), "fences are built on Linux and macOS; run the agent unfenced with --no-fence")
	}
	spec, exposed, err := fenceSpec(c, cfg)
	if err != nil {
		return err
	}
	f, err := fence.Start(os.Stdin, c.App.Writer, c.App.ErrWriter, cfg.Fence.Port)
	if err != nil {
		return err
	}
	defer f.Kill()
	req.Fence, req.FencePID, req.FencePort, req.Exposed = api.FenceFenced, f.Pid(), f.Port(), exposed
	g, err := cl.Grant(c.Context, req)
	if err != nil {
		return err
	}
	defer killQuietly(cl, g.Session, c.App.ErrWriter)
	warnUnexported(c.App.ErrWriter, cfg, g.Scope.Providers, g.BaseURLs, "exec sets")
	spec.AgentDir, spec.Port = filepath.Dir(g.AgentSocket), f.Port()
	spec.Env = childEnv(fenceParentEnv(cfg), providers, g)
	if err := f.Run(spec); err != nil {
		var se *fence.StartError
		if errors.As(err, &se) {
			fmt.Fprintf(c.App.ErrWriter, "tokfence: error: %s\n", se.Msg)
			return cli.Exit("", se.Code)
		}
		return err
	}
	return waitFence(f, sigs)
}

// fenceSpec resolves what the fence hides and keeps for this user.
func fenceSpec(c *cli.Context, cfg daemon.Config) (fence.Spec, []string, error) {
	home, runtimeDir, dataHome, err := fence.UserDirs()
	if err != nil {
		return fence.Spec{}, nil, err
	}
	dir, err := os.Getwd()
	if err != nil {
		return fence.Spec{}, nil, fmt.Errorf("working directory: %w", err)
	}
	own := []string{cfg.StateDir, filepath.Dir(cfg.Socket), filepath.Dir(layout.DefaultConfigFile())}
	if cfg.File != "" {
		own = append(own, filepath.Dir(cfg.File))
	}
	plan, err := fence.Resolve(fence.PlanInput{Home: home, RuntimeDir: runtimeDir, DataHome: dataHome, Dir: dir,
		Tokfence: own, Hide: cfg.Fence.Hide, ReadOnly: cfg.Fence.ReadOnly, Expose: cfg.Fence.Expose})
	if err != nil {
		return fence.Spec{}, nil, err
	}
	spec := fence.Spec{Argv: c.Args().Slice(), Dir: dir, Hide: plan.Hide, ReadOnly: plan.ReadOnly, Scratch: plan.Scratch, Keep: plan.Keep}
	return spec, plan.Exposed, nil
}

// fenceParentEnv is the environment a fenced agent starts from: the
// parent's, without what bridges out of a fence or holds a credential.
func fenceParentEnv(cfg daemon.Config) []string {
	kept, _ := fence.ScrubEnv(os.Environ(), cfg.Fence.PassEnv)
	return kept
}

// waitFence passes signals to the fence until it ends, and ends with its
// exit code (the agent's, or 128+n for a signal n).
func waitFence(f *fence.Fence, sigs <-chan os.Signal) error {
	forwardSignals(sigs, f.Done(), f.Signal)
	return exitStatus(f.Wait())
}

// forwardSignals passes what arrives on sigs to send until done closes.
func forwardSignals(sigs <-chan os.Signal, done <-chan struct{}, send func(os.Signal) error) {
	for {
		select {
		case s := <-sigs:
			_ = send(s)
		case <-done:
			return
		}
	}
}

func exitStatus(ps *os.ProcessState) error {
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return cli.Exit("", 128+int(ws.Signal()))
	}
	if code := ps.ExitCode(); code != 0 {
		return cli.Exit("", code)
	}
	return nil
}

// runUnfenced runs the agent as before the fence existed: as the user,
// with the daemon's TCP listener as its way out (and every other way).
func runUnfenced(c *cli.Context, cl *ctl.Client, req api.GrantRequest, providers daemon.Providers, cfg daemon.Config, sigs <-chan os.Signal) error {
	if err := becomeSubreaper(); err != nil {
		return fmt.Errorf("become child subreaper: %w", err)
	}
	req.Fence = api.FenceUnfenced
	g, err := cl.Grant(c.Context, req)
	if err != nil {
		return err
	}
	defer killQuietly(cl, g.Session, c.App.ErrWriter)
	if g.TCP == "" {
		return withHint(errors.New("the daemon has no TCP listener, so an unfenced agent's SDKs cannot reach it"),
			"restart it with `tokfence daemon --tcp 127.0.0.1:9471` (`make run` listens there by default), or run the agent fenced (without --no-fence)")
	}
	fmt.Fprintf(c.App.ErrWriter, "tokfence: warning: session %s runs UNFENCED: the agent can reach the keychain, the control socket and the network\n", g.Session)
	warnUnexported(c.App.ErrWriter, cfg, g.Scope.Providers, g.BaseURLs, "exec sets")
	cmd := exec.Command(c.Args().First(), c.Args().Tail()...)
	parent, _ := fence.ScrubCredentials(os.Environ(), cfg.Fence.PassEnv)
	cmd.Env = childEnv(parent, providers, g)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, c.App.Writer, c.App.ErrWriter
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(c.App.ErrWriter, "tokfence: error: start %s: %v\n", c.Args().First(), err)
		return cli.Exit("", 127)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	forwardSignals(sigs, done, cmd.Process.Signal)
	return exitStatus(cmd.ProcessState)
}

// childEnv is the parent's environment (scrubbed of credentials already)
// without any provider's key, token or base URL variable, plus the
// session's token, base URLs and canaries.
func childEnv(parent []string, providers daemon.Providers, g *api.Grant) []string {
	drop := map[string]bool{"TOKFENCE_SESSION": true}
	for _, p := range providers {
		for _, env := range []string{p.KeyEnv, p.TokenEnv, p.BaseEnv} {
			if env != "" {
				drop[env] = true
			}
		}
	}
	for k := range g.Env {
		drop[k] = true
	}
	for k := range g.Canaries {
		drop[k] = true
	}
	out := make([]string, 0, len(parent)+len(g.Env)+len(g.Canaries)+1)
	for _, kv := range parent {
		k, _, _ := strings.Cut(kv, "=")
		if !drop[k] {
			out = append(out, kv)
		}
	}
	for k, v := range g.Canaries {
		out = append(out, k+"="+v)
	}
	for k, v := range g.Env {
		out = append(out, k+"="+v)
	}
	return append(out, "TOKFENCE_SESSION="+g.Session)
}

// killQuietly ends the session when the child is done. The daemon also
// kills it when this process exits, so a failure here is only reported.
func killQuietly(cl *ctl.Client, sid string, w interface{ Write([]byte) (int, error) }) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := cl.Kill(ctx, api.KillRequest{Session: sid}); err != nil && !isNotFound(err) {
		fmt.Fprintf(w, "tokfence: warning: could not kill session %s: %v\n", sid, err)
	}
}

func isNotFound(err error) bool {
	var ae *api.Error
	return errors.As(err, &ae) && ae.Status == 404
}
