package main

import (
	"testing"

	"github.com/BurntSushi/toml"
)

func TestDaemonConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		f    auditFsync
		want any // the audit_fsync value, nil for no line
	}{
		{"the default config says nothing", fsyncDefault, nil},
		{"fsync off", fsyncOff, "never"},
		{"fsync on", fsyncOn, "always"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := daemonConfig("/tmp/s", "http://127.0.0.1:9", tc.f)
			var m map[string]any
			if _, err := toml.Decode(cfg, &m); err != nil {
				t.Fatalf("daemonConfig(%v) = %q: %v", tc.f, cfg, err)
			}
			if got := m["audit_fsync"]; got != tc.want {
				t.Errorf("daemonConfig(%v) audit_fsync = %v, want %v", tc.f, got, tc.want)
			}
			p, _ := m["providers"].(map[string]any)["openai"].(map[string]any)
			if p["base_url"] != "http://127.0.0.1:9" || m["state_dir"] != "/tmp/s" {
				t.Errorf("daemonConfig(%v) = %q: wrong state_dir or base_url", tc.f, cfg)
			}
		})
	}
}
