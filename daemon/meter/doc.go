// Package meter is what Tokfence knows of spend: the usage readers for
// every provider's replies (sized JSON, SSE streams, Responses events),
// the price table (the embedded genai-prices release or pricing_file, with
// config overrides), the per-session and per-agent day and month tallies,
// the budget check made before a request goes out, and the one reader of
// spend from the audit trail (ReadSpend), shared by the daemon's restart
// and `tokfence usage`.
//
// Invariant: a request with no known price is never free. Its tokens
// count, it is marked unpriced, and a spend limit that cannot be enforced
// on it refuses it (ErrUnpriced); a reply without usage is estimated from
// its size and marked as an estimate.
package meter
