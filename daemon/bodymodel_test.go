package daemon

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/tokfence/tokfence/daemon/api"
)

func TestBodyModel(t *testing.T) {
	for _, c := range []struct {
		body, want string
		err        error
	}{
		{`{"model":"gpt-4o","messages":[]}`, "gpt-4o", nil},
		{"  \n{ \"messages\" : [{\"model\":\"nested\"}] , \"model\" : \"m1\" }", "m1", nil},
		{`{"messages":[{"role":"user","content":"say \"model\": x"}],"model":"m2"}`, "m2", nil},
		{`{"mod\u0065l":"escaped-key"}`, "escaped-key", nil},
		{`{"model":"esc\u00e9\n"}`, "esc\u00e9\n", nil},
		{"{\"model\":\"bad\x86utf8\"}", "bad\ufffdutf8", nil}, // as encoding/json and JS read it
		{`{"Model":"case-differs","MODEL":"x"}`, "", nil},     // upstreams read keys case-sensitively
		{`{"x":{"model":"deep"},"y":[1,2,{"model":"deeper"}],"z":"model"}`, "", nil},
		{`{"n":-1.5e3,"t":true,"f":false,"nil":null,"model":"after-scalars"}`, "after-scalars", nil},
		{`{}`, "", nil},
		{``, "", nil},
		{`[{"model":"array"}]`, "", nil},
		{`model=whisper-1`, "", nil},
		{`{"model":"a","model":"b"}`, "", errModelTwice},
		{`{"model":"a","mod\u0065l":"b"}`, "", errModelTwice},
		{`{"model":42}`, "", errModelNotValue},
		{`{"model":null}`, "", errModelNotValue},
		{`{"model":"a",}`, "", errBodyInvalid},
		{`{"model":"a"} {"model":"b"}`, "", errBodyInvalid},
		{`{"model":"a"`, "", errBodyInvalid},
	} {
		got, err := bodyModel([]byte(c.body))
		if got != c.want || !errors.Is(err, c.err) {
			t.Errorf("bodyModel(%s) = %q, %v; want %q, %v", c.body, got, err, c.want, c.err)
		}
	}
}

// FuzzBodyModel checks bodyModel against encoding/json decoding into a map
// (exact keys, no case folding): whenever bodyModel finds one model, it is
// the one the map holds; it never panics.
func FuzzBodyModel(f *testing.F) {
	for _, s := range []string{`{"model":"gpt-4o","messages":[{"content":"hi"}]}`, `{"mod\u0065l":"x"}`,
		`{"a":[{"b":"\"}"}],"model":"y"}`, `{"model":"a","model":"b"}`, `{"Model":"c"}`, `[1]`, `{"model":1}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		got, err := bodyModel(body)
		if err != nil {
			if got != "" {
				t.Fatalf("model %q with error %v", got, err)
			}
			return
		}
		var m map[string]json.RawMessage
		if json.Unmarshal(body, &m) != nil {
			if got != "" {
				t.Fatalf("model %q from a body that is not a JSON object", got)
			}
			return
		}
		var want string
		if raw, ok := m["model"]; ok {
			if json.Unmarshal(raw, &want) != nil {
				t.Fatalf("no error for a non-string model %s", raw)
			}
		}
		if got != want {
			t.Fatalf("bodyModel = %q, encoding/json = %q for %q", got, want, body)
		}
	})
}

// A grant limited to some models cannot be stretched to another by a body
// that names its model twice, in another case, or in a form the daemon
// cannot read: the upstream must never see such a request.
func TestModelScopeCannotBeSmuggled(t *testing.T) {
	e := startProxyEnv(t, nil)
	for _, body := range []string{
		`{"model":"o1-pro","Model":"gpt-4o-mini"}`, // encoding/json would read the last, case-insensitively
		`{"model":"o1-pro","model":"gpt-4o-mini"}`,
		`{"model":"gpt-4o-mini","model":"o1-pro"}`,
		`{"mod\u0065l":"o1-pro"}`,
		`{"model":"o1-pro","messages":[],}`,
		`{"model":["gpt-4o-mini"]}`,
	} {
		// A fresh session each: scope violations raise the risk state.
		g := e.grant(t, api.GrantRequest{Models: []string{"gpt-4o-mini"}})
		resp, out := e.do(t, false, "POST", "/openai/v1/chat/completions", body, bearer(g.Token))
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(out, "scope") {
			t.Errorf("%s: status %d, body %s; want 403 outside the grant's scope", body, resp.StatusCode, out)
		}
	}
	if n := e.up.count(); n != 0 {
		t.Fatalf("upstream saw %d smuggled requests", n)
	}
	// The allowed model still goes through, and an unlimited grant gets a
	// plain 400 for a body that names two models.
	g := e.grant(t, api.GrantRequest{Models: []string{"gpt-4o-mini"}})
	if resp, out := e.do(t, false, "POST", "/openai/v1/chat/completions", `{"model":"gpt-4o-mini"}`, bearer(g.Token)); resp.StatusCode != 200 {
		t.Fatalf("allowed model: %d %s", resp.StatusCode, out)
	}
	open := e.grant(t, api.GrantRequest{})
	if resp, out := e.do(t, false, "POST", "/openai/v1/chat/completions", `{"model":"a","model":"b"}`, bearer(open.Token)); resp.StatusCode != 400 {
		t.Fatalf("two models, unlimited grant: %d %s", resp.StatusCode, out)
	}
}
