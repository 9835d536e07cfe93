package fence

import (
	"net/url"
	"strings"
)

// bridgeVars point at ways out of the fence that its namespaces already
// close; they are dropped so that no tool even tries them.
var bridgeVars = map[string]bool{
	"DBUS_SESSION_BUS_ADDRESS": true, "DBUS_SYSTEM_BUS_ADDRESS": true,
	"SSH_AUTH_SOCK": true, "SSH_AGENT_PID": true, "GPG_AGENT_INFO": true,
	"TOKFENCE_SOCKET": true, "TOKFENCE_CONFIG": true, "TOKFENCE_STATE_DIR": true,
	"XDG_SESSION_COOKIE": true, "KRB5CCNAME": true, "DOCKER_HOST": true,
	"TMUX": true, "TMUX_PANE": true, "STY": true, "DISPLAY": true, "WAYLAND_DISPLAY": true,
	"XAUTHORITY": true, "DESKTOP_STARTUP_ID": true, "VSCODE_IPC_HOOK_CLI": true,
	"HTTP_PROXY": true, "HTTPS_PROXY": true, "ALL_PROXY": true, "NO_PROXY": true,
	"http_proxy": true, "https_proxy": true, "all_proxy": true, "no_proxy": true,
}

// credentialWords mark a variable as a credential when one of them is a
// whole word of its name (split at '_'): GITHUB_TOKEN, AWS_SECRET_ACCESS_KEY,
// ANTHROPIC_AUTH_TOKEN, PGPASSWORD's PASSWORD, NPM_CONFIG__AUTH's AUTH.
var credentialWords = []string{"KEY", "APIKEY", "TOKEN", "SECRET", "PASSWORD", "PASSWD", "PASS", "PWD",
	"CREDENTIAL", "CREDENTIALS", "AUTH", "COOKIE", "PAT", "PRIVATE", "DSN"}

// credentialSuffixes catch names where the word is glued on: PGPASSWORD,
// MYSQL_PWD is a word already, OPENAI_APIKEY, GH_ENTERPRISE_TOKEN;
// AZURE_STORAGE_CONNECTION_STRING carries an account key.
var credentialSuffixes = []string{"PASSWORD", "TOKEN", "SECRET", "APIKEY", "_KEY", "_CONNECTION_STRING"}

// IsCredentialVar reports whether an environment variable looks like it
// holds a credential, by its name or by a value carrying a URL password.
// PWD (the working directory) is the one name that is not.
func IsCredentialVar(name, value string) bool {
	if name == "PWD" || name == "OLDPWD" {
		return false
	}
	up := strings.ToUpper(name)
	for _, w := range strings.FieldsFunc(up, func(r rune) bool { return r == '_' || r == '-' || r == '.' }) {
		for _, c := range credentialWords {
			if w == c {
				return true
			}
		}
	}
	for _, s := range credentialSuffixes {
		if strings.HasSuffix(up, s) {
			return true
		}
	}
	return hasURLPassword(value)
}

// hasURLPassword reports whether v is a URL with a password in it
// (DATABASE_URL=postgres://u:pw@host/db).
func hasURLPassword(v string) bool {
	if !strings.Contains(v, "://") || !strings.Contains(v, "@") {
		return false
	}
	u, err := url.Parse(v)
	if err != nil || u.User == nil {
		return false
	}
	_, ok := u.User.Password()
	return ok
}

// ScrubEnv returns env without the variables that bridge out of a fence
// and without every credential the parent held, except the names in pass
// (fence.pass_env, the user's explicit choice). The second result names
// what was dropped, for the audit trail; values are never returned.
func ScrubEnv(env []string, pass []string) (kept, dropped []string) {
	return scrub(env, pass, true)
}

// ScrubCredentials is ScrubEnv for an agent that runs unfenced: it drops
// the credentials (provider and cloud keys, tokens, passwords) but keeps
// the bridges, which an unfenced agent can reach anyway.
func ScrubCredentials(env []string, pass []string) (kept, dropped []string) {
	return scrub(env, pass, false)
}

func scrub(env []string, pass []string, bridges bool) (kept, dropped []string) {
	allow := map[string]bool{}
	for _, p := range pass {
		allow[p] = true
	}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		if !allow[k] && (bridges && bridgeVars[k] || IsCredentialVar(k, v)) {
			dropped = append(dropped, k)
			continue
		}
		kept = append(kept, kv)
	}
	return kept, dropped
}
