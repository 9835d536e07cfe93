// Package audit is Tokfence's tamper-evident audit trail.
//
// The trail is a directory (mode 0700) of JSON Lines files (mode 0600) named
// audit-000001.jsonl, audit-000002.jsonl, ...; the highest number is the
// active file and the others are rotated archives that are never written
// again. Each line is one Record. Records are numbered from 1 with no gaps,
// and each carries in Prev the hex SHA-256 of the exact bytes of the previous
// line (without its newline); the first record carries 64 zeros. The chain
// runs across files: the first record of a new file links to the last record
// of the one before. A sidecar file, audit.head (0600), holds the sequence
// number and hash of the newest committed record (synced, unless NoSync),
// or seq 0 before the first, rewritten at most every 100 ms while records
// arrive and at Close, so that the end of the chain is anchored too.
//
// Threat model. The trail makes visible any edit, deletion, reordering or
// truncation of records, and the deletion of an archived file, made by
// someone who can write the state directory but does not rewrite every later
// record and the head to match: Verify then fails and names the first record
// it can no longer vouch for. It does not prove
// authorship. The chain is not keyed, so anyone who can write the directory
// can rewrite the whole trail and the head consistently, or append new
// records that chain correctly; tamper evidence against such an attacker
// needs a copy of the head kept elsewhere (a remote log, a printout).
// Root and anything that can ptrace the daemon are out of scope, as in the
// design. Records never carry secret material: callers pass ids and
// fingerprints, and Record has no field meant for key or token bytes.
//
// Invariants:
//   - A record is written with a single write call of the whole line; a line
//     without a trailing newline is a torn write and was never acknowledged.
//   - Append returns nil only after the line and (unless Options.NoSync or
//     interval mode) an fsync that began after it was written succeeded.
//     Concurrent appends share that fsync (group commit): each writes its
//     line under the lock, then one of them syncs every line written so far
//     while the others wait and later appends keep writing.
//   - AppendAsync returns once its line is written; the record is committed
//     with the next Append's fsync, or by itself within 5 ms, and until then
//     an OS crash or power loss can lose it (never a record Append
//     returned). The daemon uses it only for a request's completion record.
//   - In interval mode (Options.SyncWindow) every Append is an AppendAsync
//     whose fsync begins at most one window after its line was written (or
//     as soon as the fsync running then ends). A line is written before
//     Append returns, so a crash of the process loses no record; an OS
//     crash or power loss can lose the records of about the last window,
//     and leaves a chain that Open repairs and Verify accepts up to the
//     last record that reached the disk. Subscribers see a record once it
//     is synced. A failed fsync cuts nothing (the records were
//     acknowledged) and fails every later Append with ErrSyncFailed.
//   - Otherwise a failed commit fails every record not yet acknowledged:
//     those its fsync covered and those written after it began, which
//     chain from them. The file is cut back to the end of the last
//     acknowledged record and the chain rolled back to it, so no sequence
//     number is consumed by a failed record and no unacknowledged line
//     stays in the file. A failed write cuts back only its own torn line.
//     If a cut fails, every later Append retries it first and fails until
//     it succeeds. Records are acknowledged in sequence order, and
//     subscribers see them then.
//   - audit.head is written only after the record it names is in the log
//     (and synced, unless NoSync), so it may lag the log but is never ahead
//     of it. It is rewritten in place at most every Options.HeadEvery
//     (100 ms by default; see anchor), naming the newest committed record,
//     and at once at rotation and Close; it is synced only at rotation and
//     Close. Pacing it and not syncing it keep a busy trail at about one
//     write per record, and a lagging head loses nothing: Open accepts a
//     head that names an earlier record of the active file when the chain
//     from that record on is intact, and records the repair, and a record
//     cut from the tail of a live trail breaks the chain of the next one.
//   - A rotation is a group boundary: every record of the old file is
//     committed before the next file is created.
//   - Open never continues a broken chain silently: it repairs only a torn
//     final line or a lagging head, and records that it did so as an
//     "audit_recovered" record; anything else is refused with a *BreakError.
package audit

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Event names written by the daemon. Callers may use others; Event must not
// be empty.
const (
	EventDaemonStart  = "daemon_start"
	EventDaemonStop   = "daemon_stop"
	EventGrant        = "grant"
	EventRenew        = "renew"
	EventRequest      = "request"
	EventResponse     = "response"
	EventSensorHit    = "sensor_hit"
	EventRiskChange   = "risk_change"
	EventKill         = "kill"
	EventPolicyReload = "policy_reload"
	EventKeySet       = "key_set"
	EventKeyRemove    = "key_remove"
	EventRecovered    = "audit_recovered"
	EventPeerRefused  = "peer_refused"
)

// Record is one audit event. Seq, Prev and (when zero) Time are assigned by
// Append. No field is meant for secret bytes: sensor hits carry the rule,
// encoding and a fingerprint, never the matched text.
type Record struct {
	Seq   uint64    `json:"seq"`
	Time  time.Time `json:"time"`
	Prev  string    `json:"prev"`
	Event string    `json:"event"`

	Session string `json:"session,omitempty"`
	Agent   string `json:"agent,omitempty"`
	JTI     string `json:"jti,omitempty"`

	PeerUID *int   `json:"peer_uid,omitempty"`
	PeerPID int    `json:"peer_pid,omitempty"`
	PeerExe string `json:"peer_exe,omitempty"`

	Provider  string  `json:"provider,omitempty"`
	Model     string  `json:"model,omitempty"`
	Method    string  `json:"method,omitempty"`
	Path      string  `json:"path,omitempty"`
	Status    int     `json:"status,omitempty"`
	LatencyMS float64 `json:"latency_ms,omitempty"`
	BytesIn   int64   `json:"bytes_in,omitempty"`
	BytesOut  int64   `json:"bytes_out,omitempty"`
	Usage     *Usage  `json:"usage,omitempty"`

	Rule        string `json:"rule,omitempty"`
	Encoding    string `json:"encoding,omitempty"`
	Direction   string `json:"direction,omitempty"`
	Fingerprint string `json:"fingerprint,omitempty"`

	From string `json:"from,omitempty"`
	To   string `json:"to,omitempty"`

	Reason string            `json:"reason,omitempty"`
	Error  string            `json:"error,omitempty"`
	Detail map[string]string `json:"detail,omitempty"`
}

// Usage is the token accounting of one upstream response. Estimated reports
// whether the counts were estimated by the daemon rather than reported by
// the provider.
type Usage struct {
	InputTokens  int64 `json:"input_tokens,omitempty"`
	OutputTokens int64 `json:"output_tokens,omitempty"`
	CachedTokens int64 `json:"cached_tokens,omitempty"`
	// CacheWriteTokens are the input tokens written to a prompt cache
	// (Anthropic's cache_creation_input_tokens); InputTokens includes them.
	CacheWriteTokens int64 `json:"cache_write_tokens,omitempty"`
	Estimated        bool  `json:"estimated,omitempty"`
}

const (
	// DefaultMaxFileBytes is the rotation size: small enough that Open's
	// scan of the active file stays fast, large enough that rotation is rare.
	DefaultMaxFileBytes = 16 << 20

	// maxLine bounds one record line so that readers keep bounded memory
	// on a hostile file; no legitimate record comes near it.
	maxLine = 1 << 20

	headName   = "audit.head"
	filePrefix = "audit-"
	fileSuffix = ".jsonl"
)

// genesis is the Prev of the very first record.
var genesis = strings.Repeat("0", 64)

// ErrClosed is returned by Append on a closed Log.
var ErrClosed = errors.New("audit log closed")

// ErrSyncFailed is wrapped by every Append (and Close) after an fsync
// failed in interval mode: records were acknowledged that may not be on
// disk, so the Log fails closed until the trail is reopened.
var ErrSyncFailed = errors.New("audit log fsync failed")

// ErrTooLarge is returned by Append for a record whose line exceeds the
// largest line readers accept.
var ErrTooLarge = errors.New("audit record too large")

// BreakError names the first record whose integrity Verify (or Open) cannot
// confirm. File is the base name of the file, Line is 1-based; Seq is 0 when
// the line could not be parsed.
type BreakError struct {
	File   string
	Line   int
	Seq    uint64
	Reason string
}

// Error describes the break.
func (e *BreakError) Error() string {
	return fmt.Sprintf("audit chain broken at %s line %d (seq %d): %s", e.File, e.Line, e.Seq, e.Reason)
}

// lineHash returns the hex SHA-256 of a record line without its newline.
func lineHash(line []byte) string {
	sum := sha256.Sum256(line)
	return hex.EncodeToString(sum[:])
}

// fileName returns the name of the n-th log file.
func fileName(n int) string {
	return fmt.Sprintf("%s%06d%s", filePrefix, n, fileSuffix)
}

// parseFileName returns the number of a log file name and reports whether
// name is one.
func parseFileName(name string) (int, bool) {
	s, ok := strings.CutPrefix(name, filePrefix)
	if !ok {
		return 0, false
	}
	s, ok = strings.CutSuffix(s, fileSuffix)
	if !ok || len(s) < 6 {
		return 0, false
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || fileName(n) != name {
		return 0, false
	}
	return n, true
}
