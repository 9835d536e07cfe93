package daemon

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/tokfence/tokfence/daemon/audit"
	"github.com/tokfence/tokfence/daemon/fence"
	"github.com/tokfence/tokfence/daemon/layout"
	"github.com/tokfence/tokfence/daemon/localsock"
	"github.com/tokfence/tokfence/daemon/meter"
	"github.com/tokfence/tokfence/policy/tomlfile"
)

// Config is the daemon's merged configuration. Precedence is flags >
// TOKFENCE_* environment > config file > defaults; Load merges the lower
// three and the CLI applies flags, then Validate runs once on the result.
// Secrets are never configuration: keys enter only through `tokfence key set`.
type Config struct {
	Socket    string `toml:"socket"`
	StateDir  string `toml:"state_dir"`
	AllowRoot bool   `toml:"allow_root"`
	TCP       string `toml:"tcp"`
	// AuditSync is when the audit trail is fsynced (see AuditSyncMode);
	// AuditSyncWindow bounds the wait in interval mode.
	AuditSync       AuditSyncMode `toml:"audit_fsync"`
	AuditSyncWindow Duration      `toml:"audit_fsync_window"`
	MaxTTL          Duration      `toml:"max_ttl"`
	KeychainTimeout Duration      `toml:"keychain_timeout"`
	MaxBodyBytes    int64         `toml:"max_body_bytes"`
	// UpstreamHeaderTimeout bounds the wait for an upstream's response
	// headers. Non-streaming completions of long outputs can take minutes.
	UpstreamHeaderTimeout Duration `toml:"upstream_header_timeout"`
	// HeaderTimeout bounds how long a client may take to send its request
	// headers (slowloris).
	HeaderTimeout Duration `toml:"header_timeout"`
	// UpstreamIdleTimeout cuts a response whose upstream sends nothing for
	// this long (a hung stream). Reasoning models can think for minutes
	// between events, so the default is generous.
	UpstreamIdleTimeout Duration                  `toml:"upstream_idle_timeout"`
	PolicyFile          string                    `toml:"policy_file"`
	LogLevel            string                    `toml:"log_level"`
	Providers           map[string]ProviderConfig `toml:"providers"`
	// PricingFile is a price table in genai-prices format that replaces
	// the embedded one.
	PricingFile string `toml:"pricing_file"`
	// Pricing overrides the price table, keyed "PROVIDER/MODEL".
	Pricing map[string]meter.PriceOverride `toml:"pricing"`
	// Budgets caps spend per agent ("*": every agent without its own).
	Budgets map[string]meter.Budget `toml:"budgets"`
	// Fence is how `tokfence exec` fences agents (on by default).
	Fence FenceConfig `toml:"fence"`

	// File is the config file that was read ("" when none).
	File string `toml:"-"`
	// ResetRevocations (daemon --reset-revocations, never a config key)
	// replaces a revocation list that fails its anchor with an empty one
	// past the anchored epoch: every token minted before is dead.
	ResetRevocations bool `toml:"-"`
}

// Duration is a time.Duration written in TOML as a string such as "30m".
type Duration struct{ time.Duration }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("bad duration %q (want e.g. \"30m\", \"24h\")", b)
	}
	d.Duration = v
	return nil
}

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// AuditSyncMode is when the daemon fsyncs its audit trail (audit_fsync).
// In every mode a request's record is written to the trail before a byte
// of the request goes upstream, so a crash of the daemon loses no record;
// the modes differ in what an OS crash or power loss can lose.
type AuditSyncMode string

const (
	// AuditSyncInterval (the default) fsyncs in the background, within
	// audit_fsync_window of each record: a power loss can lose the records
	// of about the last window, and requests never wait for the disk.
	AuditSyncInterval AuditSyncMode = "interval"
	// AuditSyncAlways fsyncs each record before the request goes upstream
	// (concurrent requests share fsyncs): a power loss loses no record of
	// a forwarded request, and each request waits for the disk.
	AuditSyncAlways AuditSyncMode = "always"
	// AuditSyncNever leaves writing back to the kernel: a power loss can
	// lose any records not yet written back (tens of seconds of them), and
	// the trail may need inspection before the daemon starts again.
	AuditSyncNever AuditSyncMode = "never"
)

// ParseAuditSync reads an audit_fsync value. true and false, the only
// values before interval mode existed, mean "always" and "never".
func ParseAuditSync(s string) (AuditSyncMode, error) {
	switch m := AuditSyncMode(s); m {
	case AuditSyncInterval, AuditSyncAlways, AuditSyncNever:
		return m, nil
	}
	if b, err := strconv.ParseBool(s); err == nil {
		return auditSyncOf(b), nil
	}
	return "", fmt.Errorf("audit_fsync %q: want \"interval\" (the default), \"always\" or \"never\"", s)
}

func auditSyncOf(b bool) AuditSyncMode {
	if b {
		return AuditSyncAlways
	}
	return AuditSyncNever
}

// UnmarshalTOML accepts a mode's name or, from older configs, a bool.
func (m *AuditSyncMode) UnmarshalTOML(v any) error {
	switch v := v.(type) {
	case bool:
		*m = auditSyncOf(v)
		return nil
	case string:
		mode, err := ParseAuditSync(v)
		if err != nil {
			return err
		}
		*m = mode
		return nil
	}
	return fmt.Errorf("audit_fsync: want \"interval\" (the default), \"always\" or \"never\", not %T", v)
}

// auditSyncWindow is the audit trail's audit.Options.SyncWindow: the
// window in interval mode, and zero (no window) in the others.
func (c *Config) auditSyncWindow() time.Duration {
	if c.AuditSync != AuditSyncInterval {
		return 0
	}
	return c.AuditSyncWindow.Duration
}

// Defaults returns the configuration used when nothing is set.
func Defaults() Config {
	return Config{
		Socket:                layout.DefaultSocketPath(),
		StateDir:              layout.DefaultStateDir(),
		AuditSync:             AuditSyncInterval,
		AuditSyncWindow:       Duration{audit.DefaultSyncWindow},
		MaxTTL:                Duration{24 * time.Hour},
		KeychainTimeout:       Duration{5 * time.Second},
		MaxBodyBytes:          32 << 20, // the largest request body we accept and scan: 32 MiB covers image inputs
		UpstreamHeaderTimeout: Duration{5 * time.Minute},
		HeaderTimeout:         Duration{10 * time.Second},
		UpstreamIdleTimeout:   Duration{5 * time.Minute},
		LogLevel:              "info",
		Fence:                 FenceConfig{Enabled: true, Port: fence.DefaultPort},
	}
}

// Load builds a Config from defaults, the config file and the environment.
// file == "" means TOKFENCE_CONFIG, else the default path if it exists; a
// file named explicitly must exist. getenv is os.Getenv outside tests.
func Load(file string, getenv func(string) string) (Config, error) {
	cfg := Defaults()
	explicit := file != ""
	if file == "" {
		file = getenv("TOKFENCE_CONFIG")
		explicit = file != ""
	}
	if file == "" {
		file = layout.DefaultConfigFile()
	}
	b, err := os.ReadFile(file)
	switch {
	case err == nil:
		if err := decodeConfig(b, file, &cfg); err != nil {
			return Config{}, err
		}
		cfg.File = file
	case errors.Is(err, fs.ErrNotExist) && !explicit:
	default:
		return Config{}, fmt.Errorf("read config: %w", err)
	}
	if err := applyEnv(&cfg, getenv); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

func decodeConfig(b []byte, file string, cfg *Config) error {
	md, err := toml.Decode(string(b), cfg)
	if err != nil {
		return tomlfile.DecodeError(file, b, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		k := und[0]
		return fmt.Errorf("%s:%d: unknown key %q", file, tomlfile.KeyLine(b, k), k.String())
	}
	return nil
}

func applyEnv(cfg *Config, getenv func(string) string) error {
	str := map[string]*string{
		"TOKFENCE_SOCKET":       &cfg.Socket,
		"TOKFENCE_STATE_DIR":    &cfg.StateDir,
		"TOKFENCE_TCP":          &cfg.TCP,
		"TOKFENCE_POLICY_FILE":  &cfg.PolicyFile,
		"TOKFENCE_PRICING_FILE": &cfg.PricingFile,
		"TOKFENCE_LOG_LEVEL":    &cfg.LogLevel,
	}
	for k, p := range str {
		if v := getenv(k); v != "" {
			*p = v
		}
	}
	if v := getenv("TOKFENCE_AUDIT_FSYNC"); v != "" {
		m, err := ParseAuditSync(v)
		if err != nil {
			return fmt.Errorf("TOKFENCE_AUDIT_FSYNC: %w", err)
		}
		cfg.AuditSync = m
	}
	for k, p := range map[string]*bool{"TOKFENCE_ALLOW_ROOT": &cfg.AllowRoot,
		"TOKFENCE_FENCE": &cfg.Fence.Enabled} {
		if v := getenv(k); v != "" {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return fmt.Errorf("%s=%q: want true or false", k, v)
			}
			*p = b
		}
	}
	if v := getenv("TOKFENCE_MAX_TTL"); v != "" {
		if err := cfg.MaxTTL.UnmarshalText([]byte(v)); err != nil {
			return fmt.Errorf("TOKFENCE_MAX_TTL: %w", err)
		}
	}
	return nil
}

// Validate checks the merged configuration once, before anything starts.
func (c *Config) Validate() error {
	if c.Socket == "" || !filepath.IsAbs(c.Socket) {
		return fmt.Errorf("config: socket path %q must be absolute", c.Socket)
	}
	if c.StateDir == "" || !filepath.IsAbs(c.StateDir) {
		return fmt.Errorf("config: state_dir %q must be absolute", c.StateDir)
	}
	switch c.AuditSync {
	case AuditSyncInterval, AuditSyncAlways, AuditSyncNever:
	default:
		return fmt.Errorf("config: audit_fsync %q: want \"interval\", \"always\" or \"never\"", c.AuditSync)
	}
	if w := c.AuditSyncWindow.Duration; w < time.Millisecond || w > audit.MaxSyncWindow {
		return fmt.Errorf("config: audit_fsync_window %s must be between 1ms and %s (what a power loss can take grows with it)", c.AuditSyncWindow, audit.MaxSyncWindow)
	}
	if c.MaxTTL.Duration < time.Minute || c.MaxTTL.Duration > 30*24*time.Hour {
		return fmt.Errorf("config: max_ttl %s must be between 1m and 720h", c.MaxTTL)
	}
	if c.UpstreamIdleTimeout.Duration <= 0 {
		return fmt.Errorf("config: upstream_idle_timeout must be positive")
	}
	if c.HeaderTimeout.Duration <= 0 {
		return fmt.Errorf("config: header_timeout must be positive")
	}
	if c.UpstreamHeaderTimeout.Duration <= 0 {
		return fmt.Errorf("config: upstream_header_timeout must be positive")
	}
	if c.KeychainTimeout.Duration <= 0 {
		return fmt.Errorf("config: keychain_timeout must be positive")
	}
	if c.MaxBodyBytes < 1<<10 {
		return fmt.Errorf("config: max_body_bytes %d is below 1 KiB", c.MaxBodyBytes)
	}
	if c.TCP != "" {
		if err := localsock.CheckLoopbackAddr(c.TCP); err != nil {
			return fmt.Errorf("config: %w", err)
		}
	}
	if c.PolicyFile != "" && !filepath.IsAbs(c.PolicyFile) {
		return fmt.Errorf("config: policy_file %q must be absolute", c.PolicyFile)
	}
	if _, err := ParseLogLevel(c.LogLevel); err != nil {
		return err
	}
	if _, err := BuildProviders(c.Providers); err != nil {
		return err
	}
	if c.PricingFile != "" && !filepath.IsAbs(c.PricingFile) {
		return fmt.Errorf("config: pricing_file %q must be absolute", c.PricingFile)
	}
	if _, err := meter.LoadPrices(c.PricingFile, c.Pricing); err != nil {
		return err
	}
	if err := c.Fence.validate(); err != nil {
		return err
	}
	for a, b := range c.Budgets {
		if b.DailyUSD < 0 || b.MonthlyUSD < 0 || b.DailyTokens < 0 || b.MonthlyTokens < 0 {
			return fmt.Errorf("config: budgets.%s: limits must be non-negative", a)
		}
	}
	return nil
}
