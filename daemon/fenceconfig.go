package daemon

import (
	"fmt"
	"sort"

	"github.com/tokfence/tokfence/daemon/fence"
)

// FenceConfig is how `tokfence exec` fences its agent. In the config file
// it is either `fence = false` (run agents unfenced) or a table:
//
//	[fence]
//	hide = ["~/work/secrets"]    # hidden besides the defaults
//	read_only = ["~/.config/nvim"] # readable, not changeable, besides the defaults
//	expose = ["~/.aws"]           # a default re-shown (or made writable): the user's choice, audited
//	pass_env = ["GITHUB_TOKEN"]  # a credential variable let through
type FenceConfig struct {
	Enabled  bool
	Hide     []string
	ReadOnly []string
	Expose   []string
	PassEnv  []string
	// Port is the forwarder's port on the fence's own loopback.
	Port int
}

// UnmarshalTOML accepts a bool or the [fence] table, refusing unknown keys
// (the decoder cannot see into a custom type to report them itself).
func (f *FenceConfig) UnmarshalTOML(v any) error {
	switch v := v.(type) {
	case bool:
		f.Enabled = v
		return nil
	case map[string]any:
		return f.fromTable(v)
	}
	return fmt.Errorf("fence: want true, false or a [fence] table, not %T", v)
}

func (f *FenceConfig) fromTable(t map[string]any) error {
	keys := make([]string, 0, len(t))
	for k := range t {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		var err error
		switch k {
		case "enabled":
			b, ok := t[k].(bool)
			if !ok {
				err = fmt.Errorf("want true or false")
			}
			f.Enabled = b
		case "hide":
			f.Hide, err = stringList(t[k])
		case "read_only":
			f.ReadOnly, err = stringList(t[k])
		case "expose":
			f.Expose, err = stringList(t[k])
		case "pass_env":
			f.PassEnv, err = stringList(t[k])
		case "port":
			n, ok := t[k].(int64)
			if !ok || n < 1 || n > 65535 {
				err = fmt.Errorf("want a port number between 1 and 65535")
			}
			f.Port = int(n)
		default:
			err = fmt.Errorf("unknown key")
		}
		if err != nil {
			return fmt.Errorf("fence.%s: %w", k, err)
		}
	}
	return nil
}

func stringList(v any) ([]string, error) {
	list, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("want a list of strings")
	}
	out := make([]string, 0, len(list))
	for _, e := range list {
		s, ok := e.(string)
		if !ok || s == "" {
			return nil, fmt.Errorf("want a list of non-empty strings")
		}
		out = append(out, s)
	}
	return out, nil
}

// validate checks every path can be resolved against a home directory.
func (f *FenceConfig) validate() error {
	for _, list := range [][]string{f.Hide, f.ReadOnly, f.Expose} {
		for _, p := range list {
			if _, err := fence.Expand(p, "/home/x"); err != nil {
				return fmt.Errorf("config: %w", err)
			}
		}
	}
	return nil
}
