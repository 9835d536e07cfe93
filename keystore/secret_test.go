package keystore

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

const fakeKey = "sk-proj-TESTabcdefghijklmnopqrstuvwxyz0123456789"

func TestSecretNeverFormatsItself(t *testing.T) {
	s := NewSecret([]byte(fakeKey))
	type wrapper struct {
		Name string
		Key  Secret
	}
	w := wrapper{"openai", s}
	outs := map[string]string{}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%10s", "%-8v"} {
		outs["fmt "+verb] = fmt.Sprintf(verb, s)
		outs["fmt struct "+verb] = fmt.Sprintf(verb, w)
		outs["fmt ptr "+verb] = fmt.Sprintf(verb, &w)
	}
	outs["String"] = s.String()
	outs["GoString"] = s.GoString()
	outs["Sprint"] = fmt.Sprint(s, w)
	outs["Sprintln"] = fmt.Sprintln(s)
	j, err := json.Marshal(w)
	if err != nil {
		t.Fatal(err)
	}
	outs["json"] = string(j)
	var text, js bytes.Buffer
	slog.New(slog.NewTextHandler(&text, nil)).Info("k", "key", s, "w", w, "group", slog.Group("g", "k", s))
	slog.New(slog.NewJSONHandler(&js, nil)).Info("k", "key", s, "w", w)
	outs["slog text"] = text.String()
	outs["slog json"] = js.String()
	for name, out := range outs {
		if strings.Contains(out, fakeKey) || strings.Contains(out, fmt.Sprintf("%x", fakeKey)) || strings.Contains(out, "TESTabc") {
			t.Errorf("%s leaked the secret: %s", name, out)
		}
		if !strings.Contains(out, redacted) && !strings.HasPrefix(name, "fmt struct %x") {
			// every path shows the marker, so a reader sees something was hidden
			if !strings.Contains(out, "REDACTED") {
				t.Errorf("%s = %q, want the redaction marker", name, out)
			}
		}
	}
	if got := string(s.Reveal()); got != fakeKey {
		t.Fatalf("Reveal() = %q, want the key", got)
	}
}

func TestSecretHint(t *testing.T) {
	tests := []struct{ in, want string }{
		{"sk-proj-abcdefghijklmnopqrstuvwxyzAbCd", "sk-proj-…AbCd"},
		{"sk-ant-api03-abcdefghijklmnopqrstuvwxyzWXYZ", "sk-ant-…WXYZ"},
		{"AIzaSyabcdefghijklmnopqrstuvwxyz012345", "…2345"},
		{"short-key", "…(9 bytes)"},
	}
	for _, tt := range tests {
		if got := NewSecret([]byte(tt.in)).Fingerprint(); got != tt.want {
			t.Errorf("Hint(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
