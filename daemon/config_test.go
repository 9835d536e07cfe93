package daemon

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tokfence/tokfence/daemon/meter"
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
	if cfg.AuditSync != AuditSyncInterval || cfg.MaxBodyBytes != 32<<20 {
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

func TestLoadFence(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		env     map[string]string
		want    FenceConfig
		wantErr string
	}{
		{name: "on by default", want: FenceConfig{Enabled: true, Port: 9471}},
		{name: "fence = false turns it off", body: "fence = false\n", want: FenceConfig{Port: 9471}},
		{name: "a [fence] table keeps it on", body: "[fence]\nhide = [\"~/secrets\"]\nexpose = [\"~/.aws\"]\npass_env = [\"GITHUB_TOKEN\"]\nport = 8080\n",
			want: FenceConfig{Enabled: true, Hide: []string{"~/secrets"}, Expose: []string{"~/.aws"}, PassEnv: []string{"GITHUB_TOKEN"}, Port: 8080}},
		{name: "enabled = false in the table", body: "[fence]\nenabled = false\n", want: FenceConfig{Port: 9471}},
		{name: "TOKFENCE_FENCE=false beats the file", body: "fence = true\n", env: map[string]string{"TOKFENCE_FENCE": "false"}, want: FenceConfig{Port: 9471}},
		{name: "an unknown key is an error", body: "[fence]\nhidden = [\"x\"]\n", wantErr: `fence.hidden: unknown key`},
		{name: "a relative path is an error", body: "[fence]\nhide = [\"secrets\"]\n", wantErr: `want an absolute path`},
		{name: "a string is not a fence", body: "fence = \"off\"\n", wantErr: "fence: want true, false or a [fence] table"},
		{name: "a bad port", body: "[fence]\nport = 0\n", wantErr: "fence.port"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := loadBody(t, tt.body, tt.env)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Load(%q) = %v, want an error with %q", tt.body, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Load(%q) = %v", tt.body, err)
			}
			if !reflect.DeepEqual(cfg.Fence, tt.want) {
				t.Fatalf("Load(%q).Fence = %+v, want %+v", tt.body, cfg.Fence, tt.want)
			}
		})
	}
}

// TestProviderQuirksAreData: a custom provider gets the model-in-path and
// stream-usage behaviour of the built-ins from its config alone, and a bad
// model_path is refused by name.
func TestProviderQuirksAreData(t *testing.T) {
	ps, err := BuildProviders(map[string]ProviderConfig{
		"local": {BaseURL: "http://127.0.0.1:11434", AuthHeader: "Authorization", AuthScheme: "Bearer",
			ModelPath: "/models/", StreamUsage: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	p := ps["local"]
	if f, err := fieldsOf(p, "/v1/models/llama3:generate", []byte(`{"model":"other"}`)); err != nil || f.model != "llama3" {
		t.Errorf("model from the path = %q, %v; want llama3", f.model, err)
	}
	if !p.StreamUsage || ps["mistral"].StreamUsage || !ps["openai"].StreamUsage {
		t.Errorf("stream_usage: local %v, mistral %v, openai %v; want true, false, true", p.StreamUsage, ps["mistral"].StreamUsage, ps["openai"].StreamUsage)
	}
	if f, _ := fieldsOf(ps["mistral"], "/v1/models/x", []byte(`{"model":"from-body"}`)); f.model != "from-body" {
		t.Errorf("a provider without model_path read %q, want the body's model", f.model)
	}
	for _, bad := range []string{"models", "/models", "/../", "//"} {
		_, err := BuildProviders(map[string]ProviderConfig{"local": {BaseURL: "http://127.0.0.1:1", AuthHeader: "Authorization", ModelPath: bad}})
		if err == nil || !strings.Contains(err.Error(), "model_path") {
			t.Errorf("model_path %q: err = %v, want one naming model_path", bad, err)
		}
	}
}

// TestEmbeddedPricesNameBuiltinProviders: every provider the embedded
// price table prices is one the daemon has, so no price is unreachable.
func TestEmbeddedPricesNameBuiltinProviders(t *testing.T) {
	for _, name := range meter.ProviderNames() {
		if _, ok := builtinProviders[name]; !ok {
			t.Errorf("the price table prices %q, which is no built-in provider", name)
		}
	}
}

// TestPricingFileFromConfigAndEnv: pricing_file comes from the config
// file or TOKFENCE_PRICING_FILE, and must be absolute.
func TestPricingFileFromConfigAndEnv(t *testing.T) {
	path := fixturePrices(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(file, []byte("pricing_file = \""+path+"\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	tests := []struct {
		name    string
		file    string
		env     map[string]string
		want    string
		wantErr string
	}{
		{"from the config file", file, nil, path, ""},
		{"from TOKFENCE_PRICING_FILE over the file", file, map[string]string{"TOKFENCE_PRICING_FILE": "/elsewhere.json"}, "/elsewhere.json", ""},
		{"relative path refused", "", map[string]string{"TOKFENCE_CONFIG": "", "TOKFENCE_PRICING_FILE": "prices.json"}, "prices.json", "must be absolute"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Load(tt.file, env(tt.env))
			if err != nil {
				t.Fatal(err)
			}
			if cfg.PricingFile != tt.want {
				t.Errorf("PricingFile = %q, want %q", cfg.PricingFile, tt.want)
			}
			if tt.wantErr != "" {
				if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("Validate() = %v, want %q", err, tt.wantErr)
				}
			}
		})
	}
}

func TestLoadAuditSync(t *testing.T) {
	tests := []struct {
		name       string
		body       string
		env        map[string]string
		want       AuditSyncMode
		wantWindow time.Duration // the audit log's SyncWindow
		wantErr    string
	}{
		{name: "interval by default", want: AuditSyncInterval, wantWindow: 20 * time.Millisecond},
		{name: "always", body: "audit_fsync = \"always\"\n", want: AuditSyncAlways},
		{name: "never", body: "audit_fsync = \"never\"\n", want: AuditSyncNever},
		{name: "true from an older config is always", body: "audit_fsync = true\n", want: AuditSyncAlways},
		{name: "false from an older config is never", body: "audit_fsync = false\n", want: AuditSyncNever},
		{name: "a window of its own", body: "audit_fsync = \"interval\"\naudit_fsync_window = \"50ms\"\n", want: AuditSyncInterval, wantWindow: 50 * time.Millisecond},
		{name: "a window without interval mode is not used", body: "audit_fsync = \"always\"\naudit_fsync_window = \"50ms\"\n", want: AuditSyncAlways},
		{name: "TOKFENCE_AUDIT_FSYNC beats the file", body: "audit_fsync = \"always\"\n", env: map[string]string{"TOKFENCE_AUDIT_FSYNC": "interval"},
			want: AuditSyncInterval, wantWindow: 20 * time.Millisecond},
		{name: "TOKFENCE_AUDIT_FSYNC=0 is never", env: map[string]string{"TOKFENCE_AUDIT_FSYNC": "0"}, want: AuditSyncNever},
		{name: "an unknown mode", body: "audit_fsync = \"sometimes\"\n",
			wantErr: `:1: audit_fsync "sometimes": want "interval" (the default), "always" or "never"`},
		{name: "an unknown mode in the environment", env: map[string]string{"TOKFENCE_AUDIT_FSYNC": "sometimes"},
			wantErr: `TOKFENCE_AUDIT_FSYNC: audit_fsync "sometimes": want "interval" (the default), "always" or "never"`},
		{name: "a number", body: "audit_fsync = 1\n", wantErr: `want "interval" (the default), "always" or "never", not int64`},
		{name: "a window too long", body: "audit_fsync_window = \"2s\"\n", wantErr: "audit_fsync_window 2s must be between 1ms and 1s"},
		{name: "a window of nothing", body: "audit_fsync_window = \"0s\"\n", wantErr: "audit_fsync_window 0s must be between 1ms and 1s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := loadBody(t, tt.body, tt.env)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Load(%q) = %v, want an error with %q", tt.body, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Load(%q) = %v", tt.body, err)
			}
			if cfg.AuditSync != tt.want || cfg.auditSyncWindow() != tt.wantWindow {
				t.Errorf("Load(%q) = audit_fsync %q, window %v; want %q, %v", tt.body, cfg.AuditSync, cfg.auditSyncWindow(), tt.want, tt.wantWindow)
			}
		})
	}
}

// loadBody loads and validates a config file holding body (none if it is
// empty) under env, with no other config in sight.
func loadBody(t *testing.T, body string, extra map[string]string) (Config, error) {
	t.Helper()
	env := map[string]string{"XDG_CONFIG_HOME": t.TempDir()}
	for k, v := range extra {
		env[k] = v
	}
	file := ""
	if body != "" {
		file = writeFile(t, body)
	}
	cfg, err := Load(file, envMap(env))
	if err == nil {
		err = cfg.Validate()
	}
	return cfg, err
}
