package daemon

import (
	"context"
	"encoding/base64"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tokfence/tokfence/daemon/api"
	"github.com/tokfence/tokfence/daemon/audit"
	"github.com/tokfence/tokfence/keystore/keystoretest"
)

// TestUpstreamEchoOfTheKeyIsRedacted plays a hostile upstream that echoes
// the key it was sent, raw and base64'd, in an error body and in headers,
// one named like a credential and one with a harmless name. The key
// reaches the agent nowhere, and the session is RED (issue 14, item 1):
// a reflected key is the one way an agent could make an upstream hand it
// over.
func TestUpstreamEchoOfTheKeyIsRedacted(t *testing.T) {
	for _, where := range []string{"body", "header"} {
		t.Run(where, func(t *testing.T) {
			e := startProxyEnv(t, func(w http.ResponseWriter, r *http.Request) {
				k := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
				w.Header().Set("X-Debug-Authorization", k)
				w.Header().Set("X-Request-Headers", "Authorization: Bearer "+k+"; Accept: */*")
				w.Header().Set("X-Kept", "fine")
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(401)
				if where == "body" {
					io.WriteString(w, `{"error":{"message":"Incorrect API key provided: `+k+` (b64 `+base64.StdEncoding.EncodeToString([]byte(k))+`)","type":"invalid_request_error"}}`)
				} else {
					io.WriteString(w, `{"error":{"message":"Incorrect API key provided","type":"invalid_request_error"}}`)
				}
			})
			g := e.grant(t, api.GrantRequest{})
			resp, body := e.do(t, false, "POST", "/openai/v1/chat/completions", chatBody, bearer(g.Token))
			keystoretest.AssertNoLeakIn(t, "response body", []byte(body), [][]byte{[]byte(fakeOpenAIKey)})
			for k, v := range resp.Header {
				keystoretest.AssertNoLeakIn(t, "response header "+k, []byte(strings.Join(v, ",")), [][]byte{[]byte(fakeOpenAIKey)})
			}
			if resp.StatusCode != 401 || !strings.Contains(body, "killed") {
				t.Fatalf("reply carrying the key = %d %s, want 401: the session was killed", resp.StatusCode, body)
			}
			if s := sessionRisk(t, e, g.Session); s.Risk != "GONE" {
				t.Fatalf("session after the upstream reflected its key = %s, want RED (killed)", s.Risk)
			}
		})
	}
}

// TestNothingWrittenHoldsASecret drives grants, requests, forged tokens,
// sensor hits, a kill and a restart, then greps every log line and every
// file in the state dir for every key, token and canary in every encoding.
func TestNothingWrittenHoldsASecret(t *testing.T) {
	e := startProxyEnv(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		echo := ""
		if r.Header.Get("X-Echo") != "" {
			echo = r.Header.Get("Authorization")
		}
		io.WriteString(w, `{"usage":{"prompt_tokens":5,"completion_tokens":7},"echo":"`+echo+`"}`)
	})
	g := e.grant(t, api.GrantRequest{Agent: "leaky"})
	g2 := e.grant(t, api.GrantRequest{Agent: "other"})
	g3 := e.grant(t, api.GrantRequest{Agent: "echoed"})
	e.do(t, false, "POST", "/openai/v1/chat/completions", chatBody, bearer(g.Token))
	e.do(t, true, "POST", "/openai/v1/chat/completions", chatBody, bearer(g.Token))
	e.do(t, false, "POST", "/openai/v1/chat/completions", chatBody, bearer(g.Token+"x"))
	e.do(t, false, "POST", "/openai/v1/chat/completions", chatBody, map[string]string{"Authorization": "Bearer " + g3.Token, "X-Echo": "1"})
	e.do(t, false, "POST", "/openai/v1/chat/completions", `{"model":"gpt-4o","messages":[{"content":"my other token `+g2.Token+`"}]}`, bearer(g.Token))
	e.client.Kill(context.Background(), api.KillRequest{Session: g.Session})
	e2 := e.restart(t)
	e2.do(t, false, "POST", "/openai/v1/chat/completions", chatBody, bearer(g2.Token))
	e2.stop()

	secrets := [][]byte{[]byte(fakeOpenAIKey), []byte(fakeAnthropicKey), []byte(fakeGeminiKey), []byte(g.Token), []byte(g2.Token), []byte(g3.Token)}
	for _, c := range g.Canaries {
		secrets = append(secrets, []byte(c))
	}
	keystoretest.AssertNoLeakIn(t, "daemon log (first run)", []byte(e.logs.String()), secrets)
	keystoretest.AssertNoLeakIn(t, "daemon log (after restart)", []byte(e2.logs.String()), secrets)
	keystoretest.AssertNoLeaks(t, secrets, time.Time{}, nil, e.cfg.StateDir, e.cfg.Socket)

	// The trail is intact and the requests are in it with usage.
	res, err := audit.Verify(e.cfg.StateDir + "/audit")
	if err != nil || res.Records < 8 {
		t.Fatalf("audit verify = %+v, %v", res, err)
	}
	var withUsage, withPeer int
	audit.Read(e.cfg.StateDir+"/audit", audit.Filter{Event: audit.EventResponse}, func(r audit.Record) error {
		if r.Usage != nil && r.Usage.InputTokens == 5 && r.Usage.OutputTokens == 7 && r.Model == "gpt-4o-mini" && r.Session != "" && r.Status == 200 {
			withUsage++
			if r.PeerPID != 0 && r.PeerUID != nil && r.Detail["transport"] == "unix" {
				withPeer++
			}
		}
		return nil
	})
	if withUsage < 3 || withPeer != 1 {
		t.Fatalf("response records with usage, model, session = %d (want >= 3), with a unix peer = %d (want 1)", withUsage, withPeer)
	}
}

// TestRequestBodyGoesUpstreamAsCleared checks that what the upstream
// receives is the body the sensors cleared: byte for byte, with its length,
// when they found nothing, and never with one of our secrets in it
// (another session's token, plain and JSON-escaped) when they did. The
// built-in policy blocks those outright; were a request with one forwarded,
// it would go with the secret cut out.
func TestRequestBodyGoesUpstreamAsCleared(t *testing.T) {
	e := startProxyEnv(t, nil)
	g := e.grant(t, api.GrantRequest{Agent: "a"})
	g2 := e.grant(t, api.GrantRequest{Agent: "b"})

	plain := `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"h\u00e9llo \"quoted\" \\ tail"}]}` + "\n"
	resp, _ := e.do(t, false, "POST", "/openai/v1/chat/completions", plain, bearer(g.Token))
	if resp.StatusCode != 200 {
		t.Fatalf("clean request: status %d", resp.StatusCode)
	}
	reqs := e.up.requests()
	if got := reqs[len(reqs)-1]; string(got.Body) != plain || got.ContentLength != int64(len(plain)) {
		t.Fatalf("upstream got %q (Content-Length %d), want the agent's body unchanged %q", got.Body, got.ContentLength, plain)
	}

	escaped := strings.ReplaceAll(g2.Token, ".", `\u002e`)
	for _, body := range []string{
		`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"use ` + g2.Token + `"}]}`,
		`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"use ` + escaped + `"}]}`,
	} {
		before := e.up.count()
		resp, _ := e.do(t, false, "POST", "/openai/v1/chat/completions", body, bearer(g.Token))
		reqs := e.up.requests()[before:]
		if resp.StatusCode == 200 && len(reqs) != 1 {
			t.Fatalf("status 200 but the upstream saw %d requests", len(reqs))
		}
		for _, r := range reqs {
			keystoretest.AssertNoLeakIn(t, "upstream request body", r.Body, [][]byte{[]byte(g2.Token)})
			if int64(len(r.Body)) != r.ContentLength {
				t.Fatalf("upstream body is %d bytes but Content-Length said %d", len(r.Body), r.ContentLength)
			}
		}
	}
}
