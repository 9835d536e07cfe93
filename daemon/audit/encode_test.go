package audit

import (
	"bytes"
	"encoding/json"
	"math"
	"testing"
	"time"
)

// checkEncoding fails unless appendJSON gives exactly json.Marshal's bytes
// for r, or both refuse it.
func checkEncoding(t *testing.T, r *Record) {
	t.Helper()
	want, werr := json.Marshal(r)
	got, gerr := r.appendJSON(nil)
	if (werr != nil) != (gerr != nil) {
		t.Fatalf("json.Marshal err %v, appendJSON err %v, for %#v", werr, gerr, r)
	}
	if werr == nil && !bytes.Equal(got, want) {
		t.Fatalf("appendJSON differs from json.Marshal\n got: %s\nwant: %s", got, want)
	}
}

func TestAppendJSONMatchesEncodingJSON(t *testing.T) {
	uid := 1000
	ts := time.Date(2026, 11, 23, 6, 30, 1, 123456000, time.UTC)
	full := Record{Seq: 42, Time: ts, Prev: genesis, Event: EventResponse,
		Session: "s1", Agent: "bot", JTI: "j1", PeerUID: &uid, PeerPID: 77, PeerExe: "/usr/bin/node",
		Provider: "openai", Model: "gpt-4o", Method: "POST", Path: "/v1/chat/completions",
		Status: 200, LatencyMS: 1.234, BytesIn: 10, BytesOut: 20,
		Usage: &Usage{InputTokens: 5, OutputTokens: 7, CachedTokens: 1, Estimated: true},
		Rule:  "r", Encoding: "base64", Direction: "request", Fingerprint: "fp", From: "GREEN", To: "RED",
		Reason: "why", Error: "err", Detail: map[string]string{"z": "1", "a": "2", "transport": "tcp"}}
	zeroUID := 0
	for name, r := range map[string]Record{
		"full":              full,
		"minimal":           {Seq: 1, Time: ts, Prev: genesis, Event: "x"},
		"zero time":         {Event: "x"},
		"zero uid kept":     {Event: "x", PeerUID: &zeroUID},
		"empty usage":       {Event: "x", Usage: &Usage{}},
		"usage one field":   {Event: "x", Usage: &Usage{OutputTokens: 3}},
		"usage estimated":   {Event: "x", Usage: &Usage{Estimated: true}},
		"empty detail":      {Event: "x", Detail: map[string]string{}},
		"negatives":         {Event: "x", Status: -1, BytesIn: -5, PeerPID: -2, LatencyMS: -0.5},
		"html and quotes":   {Event: `<a href="x">&</a>`, Path: `C:\dir` + "\x00\x01\x1f\b\f\n\r\t\x7f"},
		"bad utf8":          {Event: "a\xffb\xc3", Reason: "\xed\xa0\x80"},
		"line separators":   {Event: "a\u2028b\u2029c", Model: "ünïcødé ✓ 𝄞"},
		"detail escaping":   {Event: "x", Detail: map[string]string{"<k>": "\"v\"", "\xff": "\u2028"}},
		"tiny float":        {Event: "x", LatencyMS: 1e-7},
		"huge float":        {Event: "x", LatencyMS: 1e21},
		"float exp 2 digit": {Event: "x", LatencyMS: 1.5e-10},
		"float boundary":    {Event: "x", LatencyMS: 1e-6},
		"nan":               {Event: "x", LatencyMS: math.NaN()},
		"inf":               {Event: "x", LatencyMS: math.Inf(-1)},
		"year 10000":        {Event: "x", Time: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)},
		"offset zone":       {Event: "x", Time: time.Date(2026, 1, 1, 0, 0, 0, 5, time.FixedZone("", -7*3600))},
	} {
		t.Run(name, func(t *testing.T) { checkEncoding(t, &r) })
	}
}

// FuzzRecordJSON holds the hand-written encoder to encoding/json's output,
// byte for byte, over arbitrary strings, numbers and detail maps.
func FuzzRecordJSON(f *testing.F) {
	f.Add("request", "/v1/chat", "k", "v", uint64(1), int64(200), 1.5, int64(0), true)
	f.Add("<&>", "\xff\u2028\x00", "\"", "\\", uint64(1<<63), int64(-1), 1e-9, int64(1e9), false)
	f.Fuzz(func(t *testing.T, event, path, dk, dv string, seq uint64, n int64, lat float64, nanos int64, flag bool) {
		r := &Record{Seq: seq, Time: time.Unix(0, nanos).UTC(), Prev: path, Event: event, Path: path,
			Status: int(n), BytesIn: n, LatencyMS: lat, Error: dv,
			Detail: map[string]string{dk: dv, "b" + dk: path}}
		if flag {
			pid := int(n)
			r.PeerUID = &pid
			r.Usage = &Usage{InputTokens: n, Estimated: n%2 == 0}
		}
		checkEncoding(t, r)
	})
}
