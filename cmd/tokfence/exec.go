package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/tokfence/tokfence/daemon"
)

func execCommand() *cli.Command {
	return &cli.Command{
		Name:  "exec",
		Usage: "run an agent with a fresh session's token where its SDKs look, and kill the session when it exits",
		UsageText: "tokfence exec --agent NAME --provider P [scope flags] -- CMD [ARGS...]\n\nExample:\n" +
			"   tokfence exec --agent coder --provider anthropic --ttl 1h -- my-agent --task x",
		Flags:  scopeFlags(),
		Action: runExec,
	}
}

// signalsToForward are passed through to the child; the exec process
// itself only waits for it.
var signalsToForward = []os.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT,
	syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGWINCH}

func runExec(c *cli.Context) error {
	if c.NArg() == 0 {
		return withHint(errors.New("no command to run"), "put the agent's command after `--`: tokfence exec --agent a --provider openai -- my-agent")
	}
	cfg, err := loadConfig(c)
	if err != nil {
		return err
	}
	if err := becomeSubreaper(); err != nil {
		return fmt.Errorf("become child subreaper: %w", err)
	}
	cl := daemon.NewClient(cfg.Socket)
	req := grantRequest(c)
	req.BindPeer = true // the daemon kills the session when this process exits, however it exits
	g, err := cl.Grant(c.Context, req)
	if err != nil {
		return err
	}
	defer killQuietly(cl, g.Session, c.App.ErrWriter)
	if g.TCP == "" {
		return withHint(errors.New("the daemon has no TCP listener, so SDKs cannot reach it"),
			"restart it with `tokfence daemon --tcp 127.0.0.1:9471`")
	}
	providers, err := daemon.BuildProviders(cfg.Providers)
	if err != nil {
		return err
	}
	cmd := exec.Command(c.Args().First(), c.Args().Tail()...)
	cmd.Env = childEnv(os.Environ(), providers, g)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, c.App.Writer, c.App.ErrWriter
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", c.Args().First(), err)
	}
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, signalsToForward...)
	defer signal.Stop(sigs)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	for {
		select {
		case s := <-sigs:
			_ = cmd.Process.Signal(s)
		case err := <-done:
			return childExit(err)
		}
	}
}

// childEnv is the parent's environment without any real provider key,
// plus the session's token, base URLs and canaries.
func childEnv(parent []string, providers daemon.Providers, g *daemon.Grant) []string {
	drop := map[string]bool{"TOKFENCE_SESSION": true}
	for _, p := range providers {
		if p.KeyEnv != "" {
			drop[p.KeyEnv] = true
		}
		if p.BaseEnv != "" {
			drop[p.BaseEnv] = true
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

// childExit turns the child's end into our exit: its code, or 128+signal.
func childExit(err error) error {
	if err == nil {
		return nil
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return cli.Exit("", 128+int(ws.Signal()))
		}
		return cli.Exit("", ee.ExitCode())
	}
	return err
}

// killQuietly ends the session when the child is done. The daemon also
// kills it when this process exits, so a failure here is only reported.
func killQuietly(cl *daemon.Client, sid string, w interface{ Write([]byte) (int, error) }) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := cl.Kill(ctx, daemon.KillRequest{Session: sid}); err != nil && !isNotFound(err) {
		fmt.Fprintf(w, "tokfence: warning: could not kill session %s: %v\n", sid, err)
	}
}

func isNotFound(err error) bool {
	var ae *daemon.APIError
	return errors.As(err, &ae) && ae.Status == 404
}
