package fence

import (
	"errors"
	"reflect"
	"slices"
	"testing"
)

func TestResolve(t *testing.T) {
	base := PlanInput{Home: "/home/u", RuntimeDir: "/run/user/1000", DataHome: "/home/u/.local/share", Dir: "/home/u/src",
		Tokfence: []string{"/home/u/.local/state/tokfence", "/run/user/1000/tokfence"}}
	tests := []struct {
		name                 string
		edit                 func(*PlanInput)
		hidden, shown, keep  []string
		scratch, exposedWant []string
		check                func(*testing.T, Plan)
	}{
		{name: "defaults hide every credential path, Tokfence's dirs and the keyrings",
			hidden: []string{"/home/u/.ssh", "/home/u/.gnupg", "/home/u/.aws", "/home/u/.config/gcloud", "/home/u/.azure",
				"/home/u/.kube", "/home/u/.docker/config.json", "/home/u/.netrc", "/home/u/.npmrc", "/home/u/.pypirc",
				"/home/u/.config/gh", "/home/u/.git-credentials", "/home/u/.password-store", "/home/u/.local/share/keyrings",
				"/home/u/.local/state/tokfence", "/run/user/1000/tokfence"},
			keep: []string{"/home/u/src"}, scratch: []string{"/dev/shm", "/run", "/run/user/1000", "/tmp", "/var/run"}},
		{name: "login scripts are read-only, and fence.expose makes one writable",
			edit: func(in *PlanInput) { in.ReadOnly = []string{"~/.config/nvim"}; in.Expose = []string{"~/.gitconfig"} },
			check: func(t *testing.T, p Plan) {
				for _, want := range []string{"/home/u/.bashrc", "/home/u/.profile", "/home/u/.config/systemd", "/home/u/.config/nvim"} {
					if !slices.Contains(p.ReadOnly, want) {
						t.Errorf("Resolve().ReadOnly lacks %s", want)
					}
				}
				if slices.Contains(p.ReadOnly, "/home/u/.gitconfig") {
					t.Error("Resolve().ReadOnly keeps exposed ~/.gitconfig")
				}
			}, exposedWant: []string{"/home/u/.gitconfig"}},
		{name: "fence.hide adds a path, ~ expanded",
			edit:   func(in *PlanInput) { in.Hide = []string{"~/work/secrets", "/srv/vault"} },
			hidden: []string{"/home/u/work/secrets", "/srv/vault", "/home/u/.ssh"}},
		{name: "fence.expose re-shows a default and names it for the audit",
			edit:  func(in *PlanInput) { in.Expose = []string{"~/.aws"} },
			shown: []string{"/home/u/.aws"}, exposedWant: []string{"/home/u/.aws"}, keep: []string{"/home/u/src"}},
		{name: "an exposed path below a scratch dir is kept",
			edit: func(in *PlanInput) { in.Expose = []string{"/tmp/shared"} },
			keep: []string{"/home/u/src", "/tmp/shared"}, exposedWant: []string{"/tmp/shared"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := base
			if tt.edit != nil {
				tt.edit(&in)
			}
			p, err := Resolve(in)
			if err != nil {
				t.Fatalf("Resolve = %v", err)
			}
			for _, h := range tt.hidden {
				if !slices.Contains(p.Hide, h) {
					t.Errorf("Resolve().Hide lacks %s: %v", h, p.Hide)
				}
			}
			for _, h := range tt.shown {
				if slices.Contains(p.Hide, h) {
					t.Errorf("Resolve().Hide still has exposed %s", h)
				}
			}
			if tt.keep != nil && !reflect.DeepEqual(p.Keep, tt.keep) {
				t.Errorf("Resolve().Keep = %v, want %v", p.Keep, tt.keep)
			}
			if tt.scratch != nil && !reflect.DeepEqual(p.Scratch, tt.scratch) {
				t.Errorf("Resolve().Scratch = %v, want %v", p.Scratch, tt.scratch)
			}
			if tt.check != nil {
				tt.check(t, p)
			}
			if !reflect.DeepEqual(p.Exposed, tt.exposedWant) {
				t.Errorf("Resolve().Exposed = %v, want %v", p.Exposed, tt.exposedWant)
			}
		})
	}
}

func TestResolveRefuses(t *testing.T) {
	tests := []struct {
		name string
		in   PlanInput
	}{
		{"a relative fence.hide path", PlanInput{Home: "/h", Dir: "/h/src", Hide: []string{"secrets"}}},
		{"a relative fence.expose path", PlanInput{Home: "/h", Dir: "/h/src", Expose: []string{"x/.aws"}}},
		{"a working directory inside a hidden path", PlanInput{Home: "/h", Dir: "/h/.ssh/keys"}},
		{"an exposed path inside a hidden one", PlanInput{Home: "/h", Dir: "/h/src", Expose: []string{"~/.config/gh/hosts.yml"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Resolve(tt.in); err == nil {
				t.Fatalf("Resolve(%+v) = nil error, want a refusal", tt.in)
			}
		})
	}
	var fe *Error
	if _, err := Resolve(PlanInput{Home: "/h", Dir: "/h/.ssh"}); !errors.As(err, &fe) || fe.Hint() == "" {
		t.Fatalf("working dir in a hidden path: %v, want an *Error with a hint", err)
	}
}

func TestScrubEnv(t *testing.T) {
	env := []string{"PATH=/usr/bin", "HOME=/h", "PWD=/h/src", "LANG=C.UTF-8", "TERM=xterm",
		"DBUS_SESSION_BUS_ADDRESS=unix:path=/run/user/1/bus", "SSH_AUTH_SOCK=/tmp/ssh/agent.1", "GPG_AGENT_INFO=x",
		"TOKFENCE_SOCKET=/run/user/1/tokfence/tokfence.sock", "ANTHROPIC_AUTH_TOKEN=sk-ant-oat-x", "GITHUB_TOKEN=ghp_x",
		"AWS_SECRET_ACCESS_KEY=x", "AWS_SESSION_TOKEN=x", "PGPASSWORD=x", "MYSQL_PWD=x", "NPM_CONFIG__AUTH=x",
		"OPENAI_APIKEY=x", "STRIPE_SECRET=x", "DATABASE_URL=postgres://u:hunter2@db/x", "GH_ENTERPRISE_TOKEN=x",
		"DOCKER_HOST=unix:///var/run/docker.sock", "HTTPS_PROXY=http://proxy:3128", "EDITOR=vi",
		"KEYBOARD_LAYOUT=us", "CARGO_HOME=/h/.cargo", "PUBLIC_URL=https://example.com/x"}
	kept, dropped := ScrubEnv(env, []string{"GITHUB_TOKEN"})
	want := []string{"PATH=/usr/bin", "HOME=/h", "PWD=/h/src", "LANG=C.UTF-8", "TERM=xterm", "GITHUB_TOKEN=ghp_x",
		"EDITOR=vi", "KEYBOARD_LAYOUT=us", "CARGO_HOME=/h/.cargo", "PUBLIC_URL=https://example.com/x"}
	if !reflect.DeepEqual(kept, want) {
		t.Fatalf("ScrubEnv kept %v\nwant %v", kept, want)
	}
	for _, v := range dropped {
		if slices.Contains([]string{"PATH", "HOME", "GITHUB_TOKEN"}, v) {
			t.Errorf("ScrubEnv dropped %s", v)
		}
	}
	if len(dropped) != len(env)-len(want) {
		t.Errorf("ScrubEnv dropped %d names (%v), want %d", len(dropped), dropped, len(env)-len(want))
	}
}

// TestScrubCredentialsDropsTheDocumentedList: what an unfenced exec strips
// (README, "The agent's environment"): every provider and cloud credential,
// while the bridges an unfenced agent reaches anyway stay.
func TestScrubCredentialsDropsTheDocumentedList(t *testing.T) {
	creds := []string{"OPENAI_API_KEY", "ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "GEMINI_API_KEY", "GOOGLE_API_KEY",
		"MISTRAL_API_KEY", "GITHUB_TOKEN", "GH_TOKEN", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "GITLAB_ACCESS_TOKEN",
		"CLAUDE_CODE_OAUTH_TOKEN", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AZURE_CLIENT_SECRET",
		"AZURE_OPENAI_API_KEY", "AZURE_CLIENT_CERTIFICATE_PASSWORD", "AZURE_STORAGE_CONNECTION_STRING", "AZURE_STORAGE_KEY",
		"GOOGLE_APPLICATION_CREDENTIALS", "NPM_TOKEN", "SLACK_BOT_TOKEN", "STRIPE_SECRET_KEY", "SSH_AUTH_SOCK"}
	keep := []string{"PATH", "HOME", "AWS_REGION", "AWS_PROFILE", "AZURE_TENANT_ID", "GOOGLE_CLOUD_PROJECT",
		"DBUS_SESSION_BUS_ADDRESS", "CONNECTION_TIMEOUT", "KEYMAP"}
	var env []string
	for _, k := range append(append([]string(nil), creds...), keep...) {
		env = append(env, k+"=v")
	}
	kept, dropped := ScrubCredentials(env, nil)
	slices.Sort(dropped)
	want := slices.Sorted(slices.Values(creds))
	if !slices.Equal(dropped, want) {
		t.Errorf("ScrubCredentials dropped %v\nwant %v", dropped, want)
	}
	if len(kept) != len(keep) {
		t.Errorf("ScrubCredentials kept %v, want %v", kept, keep)
	}
}
