package daemon

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func envMap(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func writeFile(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config.toml")
	must(t, os.WriteFile(p, []byte(body), 0o600))
	return p
}

func TestLoadPrecedence(t *testing.T) {
	file := writeFile(t, "socket = \"/from/file.sock\"\nstate_dir = \"/from/file/state\"\nmax_ttl = \"2h\"\n")
	cfg, err := Load(file, envMap(map[string]string{"TOKFENCE_SOCKET": "/from/env.sock"}))
	must(t, err)
	if cfg.Socket != "/from/env.sock" {
		t.Errorf("Socket = %q, want env to beat the file", cfg.Socket)
	}
	if cfg.StateDir != "/from/file/state" || cfg.MaxTTL.Duration != 2*time.Hour {
		t.Errorf("file values not applied: %+v", cfg)
	}
	if !cfg.AuditSync || cfg.MaxBodyBytes != 32<<20 {
		t.Errorf("defaults lost: %+v", cfg)
	}
	must(t, cfg.Validate())
}

func TestLoadWithoutAnyFile(t *testing.T) {
	cfg, err := Load("", envMap(map[string]string{"XDG_CONFIG_HOME": t.TempDir()}))
	if err != nil || cfg.File != "" {
		t.Fatalf("Load with no file = %+v, %v; want defaults", cfg, err)
	}
}

func TestLoadErrorsNameTheLine(t *testing.T) {
	tests := []struct {
		name, body, want string
	}{
		{"syntax error", "socket = \"/a.sock\"\n\nmax_ttl = = 3\n", ":3:"},
		{"unknown key", "socket = \"/a.sock\"\nsockett = \"/b\"\n", `:2: unknown key "sockett"`},
		{"unknown nested key", "[providers.local]\nbase_url = \"http://127.0.0.1:1\"\nauth_header = \"x\"\nauth_hedaer = \"y\"\n", `:4: unknown key "providers.local.auth_hedaer"`},
		{"bad duration", "max_ttl = \"soon\"\n", `bad duration "soon"`},
		{"wrong type", "strict = \"yes\"\n", ":1:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(writeFile(t, tt.body), envMap(nil))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Load = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestLoadExplicitMissingFileIsAnError(t *testing.T) {
	if _, err := Load(filepath.Join(t.TempDir(), "nope.toml"), envMap(nil)); err == nil {
		t.Fatal("Load of a named missing file succeeded")
	}
}

func TestValidateRefuses(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*Config)
	}{
		{"relative socket", func(c *Config) { c.Socket = "tf.sock" }},
		{"TCP on every interface", func(c *Config) { c.TCP = "0.0.0.0:9471" }},
		{"tiny max ttl", func(c *Config) { c.MaxTTL.Duration = time.Second }},
		{"bad log level", func(c *Config) { c.LogLevel = "loud" }},
		{"remote plain-http provider", func(c *Config) {
			c.Providers = map[string]ProviderConfig{"x": {BaseURL: "http://example.com", AuthHeader: "Authorization"}}
		}},
		{"reserved provider name", func(c *Config) {
			c.Providers = map[string]ProviderConfig{"v1": {BaseURL: "https://example.com", AuthHeader: "Authorization"}}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := Defaults()
			cfg.Socket, cfg.StateDir = "/tmp/x.sock", "/tmp/x"
			tt.mod(&cfg)
			if err := cfg.Validate(); err == nil {
				t.Fatalf("Validate accepted %+v", cfg)
			}
		})
	}
}
