// Package ctl is the typed client of the daemon's control API, over its
// Unix socket: what the CLI and the load harness use to grant, list, renew
// and kill sessions and read the status. It speaks only daemon/api's wire
// types and never links the proxy. Invariant: it dials only the socket it
// is given, so peer credentials, not anything it sends, decide what the
// daemon lets it do.
package ctl

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/tokfence/tokfence/daemon/api"
)

// ErrDaemonDown means nothing answered on the socket.
var ErrDaemonDown = errors.New("the tokfence daemon is not running")

// DownError is ErrDaemonDown with the socket path and the dial error.
type DownError struct {
	Socket string
	Err    error
}

func (e *DownError) Error() string {
	return fmt.Sprintf("cannot reach the tokfence daemon at %s: %v", e.Socket, e.Err)
}

// Is reports whether target is ErrDaemonDown.
func (e *DownError) Is(target error) bool { return target == ErrDaemonDown }

// Unwrap returns the dial error.
func (e *DownError) Unwrap() error { return e.Err }

// Hint says how to start the daemon.
func (e *DownError) Hint() string {
	return "start it with `tokfence daemon` (or `make run` on a headless box); pass --socket or set TOKFENCE_SOCKET if it listens elsewhere"
}

// Client speaks the control API over the Unix socket. The CLI never builds
// URLs or decodes JSON itself; it calls these methods.
type Client struct {
	Socket string
	hc     *http.Client
}

// New returns a client for the daemon listening on socket.
func New(socket string) *Client {
	tr := &http.Transport{
		Proxy: nil,
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		},
		DisableCompression: true,
	}
	return &Client{Socket: socket, hc: &http.Client{Transport: tr, Timeout: 30 * time.Second}}
}

// Status returns the daemon's status.
func (c *Client) Status(ctx context.Context) (*api.Status, error) {
	var st api.Status
	if err := c.do(ctx, http.MethodGet, "/v1/status", nil, &st); err != nil {
		return nil, err
	}
	return &st, nil
}

// do sends one control request and decodes the reply into out (if non-nil).
func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("encode request: %w", err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://tokfence"+path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		var oe *net.OpError
		if errors.As(err, &oe) && oe.Op == "dial" {
			return &DownError{Socket: c.Socket, Err: oe.Err}
		}
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20)) // replies are small; bound a confused peer
	if err != nil {
		return fmt.Errorf("%s %s: read reply: %w", method, path, err)
	}
	if resp.StatusCode >= 300 {
		var eb api.ErrorBody
		if json.Unmarshal(b, &eb) == nil && eb.Error != nil {
			eb.Error.Status = resp.StatusCode
			return eb.Error
		}
		return &api.Error{Status: resp.StatusCode, Type: "api_error", Message: http.StatusText(resp.StatusCode)}
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("%s %s: decode reply: %w", method, path, err)
	}
	return nil
}

// Grant mints a session and returns its token and environment.
func (c *Client) Grant(ctx context.Context, req api.GrantRequest) (*api.Grant, error) {
	var g api.Grant
	if err := c.do(ctx, http.MethodPost, "/v1/grant", req, &g); err != nil {
		return nil, err
	}
	return &g, nil
}

// Renew issues a further token for a live session, expiring later.
func (c *Client) Renew(ctx context.Context, req api.RenewRequest) (*api.Grant, error) {
	var g api.Grant
	if err := c.do(ctx, http.MethodPost, "/v1/renew", req, &g); err != nil {
		return nil, err
	}
	return &g, nil
}

// AuditHash returns value's fingerprint as the audit trail writes it.
func (c *Client) AuditHash(ctx context.Context, value string) (string, error) {
	var out api.AuditHash
	if err := c.do(ctx, http.MethodPost, "/v1/audit-hash", api.AuditHashRequest{Value: value}, &out); err != nil {
		return "", err
	}
	return out.Fingerprint, nil
}

// Sessions lists the live sessions.
func (c *Client) Sessions(ctx context.Context) ([]api.SessionInfo, error) {
	var out []api.SessionInfo
	if err := c.do(ctx, http.MethodGet, "/v1/sessions", nil, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// Kill revokes a session, an agent's sessions, or all sessions.
func (c *Client) Kill(ctx context.Context, req api.KillRequest) (*api.KillResult, error) {
	var out api.KillResult
	if err := c.do(ctx, http.MethodPost, "/v1/kill", req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ReloadKeys makes the daemon pick up a key stored or removed since it
// last looked, before its next request.
func (c *Client) ReloadKeys(ctx context.Context) (*api.KeysReloaded, error) {
	var out api.KeysReloaded
	if err := c.do(ctx, http.MethodPost, "/v1/keys/reload", nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
