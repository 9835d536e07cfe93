package main

import (
	"testing"
)

func TestPortkeyHeaders(t *testing.T) {
	for _, up := range []string{"http://127.0.0.1:4242", "http://127.0.0.1:4242/"} {
		h := portkeyHeaders(up)
		if got := h.Get("x-portkey-provider"); got != "openai" {
			t.Errorf("portkeyHeaders(%q) provider = %q, want openai", up, got)
		}
		if got := h.Get("x-portkey-custom-host"); got != "http://127.0.0.1:4242/v1" {
			t.Errorf("portkeyHeaders(%q) custom host = %q, want http://127.0.0.1:4242/v1", up, got)
		}
		if len(h) != 2 {
			t.Errorf("portkeyHeaders(%q) = %v, want two headers and no key", up, h)
		}
	}
}

func TestPortkeyReady(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
		body   string
		want   bool
	}{
		{"greeting", 200, "AI Gateway says hey!", true},
		{"greeting with a newline", 200, "AI Gateway says hey!\n", true},
		{"another server on the port", 200, "hello", false},
		{"an error with the greeting", 500, "AI Gateway says hey!", false},
	} {
		if got := portkeyReady(tc.status, []byte(tc.body)); got != tc.want {
			t.Errorf("%s: portkeyReady(%d, %q) = %v, want %v", tc.name, tc.status, tc.body, got, tc.want)
		}
	}
}

func TestParsePackage(t *testing.T) {
	for _, tc := range []struct {
		name, json, version, bin string
		err                      bool
	}{
		{"bin as a path", `{"version":"1.15.2","bin":"build/start-server.js"}`, "1.15.2", "build/start-server.js", false},
		{"bin as a map of one", `{"version":"1.0.0","bin":{"gateway":"b/s.js"}}`, "1.0.0", "b/s.js", false},
		{"two bins", `{"version":"1.0.0","bin":{"a":"a.js","b":"b.js"}}`, "", "", true},
		{"no bin", `{"version":"1.0.0"}`, "", "", true},
		{"no version", `{"bin":"s.js"}`, "", "", true},
		{"not json", `{`, "", "", true},
	} {
		v, bin, err := parsePackage([]byte(tc.json))
		if (err != nil) != tc.err || v != tc.version || bin != tc.bin {
			t.Errorf("%s: parsePackage(%s) = %q, %q, %v; want %q, %q, error %v", tc.name, tc.json, v, bin, err, tc.version, tc.bin, tc.err)
		}
	}
}

func TestNodeVersionOK(t *testing.T) {
	for v, ok := range map[string]bool{
		"v20.20.2": true, "v20.6.0": true, "v20.5.1": false, "v18.19.0": true, "v18.18.2": false,
		"v19.0.0": true, "v22.1.0": true, "v16.20.0": false, "garbage": false, "": false,
	} {
		if err := nodeVersionOK(v); (err == nil) != ok {
			t.Errorf("nodeVersionOK(%q) = %v, want ok %v", v, err, ok)
		}
	}
}
