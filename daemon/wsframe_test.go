package daemon

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// wsEvent is one thing a wsReader handed over, for comparing.
type wsEvent struct {
	op      wsOp
	payload string
}

// readAll feeds in to a fresh reader in chunks of chunk bytes and returns
// what it handed over and the error it stopped with.
func readAll(in []byte, masked bool, max, chunk int) ([]wsEvent, error) {
	r := &wsReader{masked: masked, max: max}
	var got []wsEvent
	fn := func(op wsOp, p []byte) error {
		got = append(got, wsEvent{op, string(p)})
		return nil
	}
	for i := 0; i < len(in); i += chunk {
		if err := r.feed(in[i:min(i+chunk, len(in))], fn); err != nil {
			return got, err
		}
	}
	return got, nil
}

func unhexFrame(s string) []byte {
	var b []byte
	for _, f := range strings.Fields(s) {
		var v byte
		fmt.Sscanf(f, "%x", &v)
		b = append(b, v)
	}
	return b
}

// The examples of RFC 6455 §5.7, each fed whole and byte by byte.
func TestWSReaderReadsTheRFCExamples(t *testing.T) {
	big := func(hdr string, n int) []byte { return append(unhexFrame(hdr), bytes.Repeat([]byte{'b'}, n)...) }
	tests := []struct {
		name   string
		in     []byte
		masked bool
		want   []wsEvent
	}{
		{"unmasked text", unhexFrame("81 05 48 65 6c 6c 6f"), false, []wsEvent{{opText, "Hello"}}},
		{"masked text", unhexFrame("81 85 37 fa 21 3d 7f 9f 4d 51 58"), true, []wsEvent{{opText, "Hello"}}},
		{"fragmented text", unhexFrame("01 03 48 65 6c 80 02 6c 6f"), false, []wsEvent{{opText, "Hello"}}},
		{"ping", unhexFrame("89 05 48 65 6c 6c 6f"), false, []wsEvent{{opPing, "Hello"}}},
		{"masked pong", unhexFrame("8a 85 37 fa 21 3d 7f 9f 4d 51 58"), true, []wsEvent{{opPong, "Hello"}}},
		{"256 bytes, 16-bit length", big("82 7e 01 00", 256), false, []wsEvent{{opBinary, strings.Repeat("b", 256)}}},
		{"64 KiB, 64-bit length", big("82 7f 00 00 00 00 00 01 00 00", 65536), false, []wsEvent{{opBinary, strings.Repeat("b", 65536)}}},
		{"a ping between fragments", unhexFrame("01 03 48 65 6c 89 00 80 02 6c 6f"), false, []wsEvent{{opPing, ""}, {opText, "Hello"}}},
		{"empty frames", unhexFrame("01 00 00 00 80 00 88 00"), false, []wsEvent{{opText, ""}, {opClose, ""}}},
	}
	for _, tt := range tests {
		for _, chunk := range []int{1, 3, len(tt.in)} {
			got, err := readAll(tt.in, tt.masked, 1<<20, chunk)
			if err != nil || fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("%s in chunks of %d: read %.60v, %v; want %.60v", tt.name, chunk, got, err, tt.want)
			}
		}
	}
}

func TestWSReaderRefusesWhatTheRFCForbids(t *testing.T) {
	tests := []struct {
		name   string
		in     string
		masked bool
		code   int
	}{
		{"reserved bit", "c1 00", false, closeProtocol},
		{"unknown opcode", "83 00", false, closeProtocol},
		{"unmasked client frame", "81 00", true, closeProtocol},
		{"masked server frame", "81 80 00 00 00 00", false, closeProtocol},
		{"fragmented control frame", "09 00", false, closeProtocol},
		{"control frame over 125 bytes", "89 7e 00 7e", false, closeProtocol},
		{"continuation outside a message", "80 00", false, closeProtocol},
		{"a message inside a message", "01 00 81 00", false, closeProtocol},
		{"64-bit length with the top bit", "82 7f 80 00 00 00 00 00 00 00", false, closeProtocol},
		{"message over the bound, refused at its header", "82 7e 01 01", false, closeTooBig},
		{"fragments over the bound", "02 7e 00 c8 " + strings.Repeat("00 ", 200) + "80 7e 00 c8", false, closeTooBig},
	}
	for _, tt := range tests {
		_, err := readAll(unhexFrame(tt.in), tt.masked, 256, 1)
		var we *wsError
		if !errors.As(err, &we) || we.code != tt.code {
			t.Errorf("%s: feed = %v, want close %d", tt.name, err, tt.code)
		}
	}
}

func TestAppendFrameRoundTrips(t *testing.T) {
	for _, n := range []int{0, 1, 125, 126, 127, 0xffff, 0x10000, 70000} {
		for _, mask := range []bool{false, true} {
			payload := bytes.Repeat([]byte("abcdefg"), n/7+1)[:n]
			frame := appendFrame(nil, opBinary, payload, mask)
			if mask && bytes.Contains(frame, payload[:min(n, 64)]) && n >= 16 {
				t.Errorf("masked frame of %d bytes carries its payload in the clear", n)
			}
			got, err := readAll(frame, mask, 1<<20, 4096)
			if err != nil || len(got) != 1 || got[0].op != opBinary || got[0].payload != string(payload) {
				t.Errorf("appendFrame(%d bytes, mask %v) reads back as %d events, %v", n, mask, len(got), err)
			}
		}
	}
}

func TestMaskBytesMatchesBytewise(t *testing.T) {
	key := [4]byte{0x37, 0xfa, 0x21, 0x3d}
	for pos := range 4 {
		for n := range 40 {
			b := bytes.Repeat([]byte{0x5a}, n)
			want := bytes.Clone(b)
			for i := range want {
				want[i] ^= key[(pos+i)&3]
			}
			if next := maskBytes(key, pos, b); !bytes.Equal(b, want) || next != (pos+n)&3 {
				t.Fatalf("maskBytes(pos %d, %d bytes) = %x, %d; want %x, %d", pos, n, b, next, want, (pos+n)&3)
			}
		}
	}
}

func TestCloseCodes(t *testing.T) {
	code := func(c int, reason string) []byte {
		return append(binary.BigEndian.AppendUint16(nil, uint16(c)), reason...)
	}
	tests := []struct {
		payload []byte
		want    int
		ok      bool
	}{
		{nil, closeNoStatus, true},
		{code(1000, "bye"), 1000, true},
		{code(4000, ""), 4000, true},
		{[]byte{3}, 0, false},
		{code(1005, ""), 0, false}, // never on the wire
		{code(1006, ""), 0, false},
		{code(999, ""), 0, false},
		{code(1000, "\xff"), 0, false},
	}
	for _, tt := range tests {
		if c, err := closeCode(tt.payload); c != tt.want || (err == nil) != tt.ok {
			t.Errorf("closeCode(%x) = %d, %v; want %d, ok %v", tt.payload, c, err, tt.want, tt.ok)
		}
	}
	long := closePayload(closePolicy, strings.Repeat("é", 100))
	if c, err := closeCode(long); len(long) > maxControl || c != closePolicy || err != nil {
		t.Errorf("closePayload of a long reason = %d bytes, code %d, %v; want it cut to a valid frame", len(long), c, err)
	}
}

// FuzzWSReader: whatever bytes arrive, in whatever pieces, the reader does
// not panic, never holds more than its bound, hands over the same events
// however the bytes are split, and what it hands over survives a round
// trip through appendFrame.
func FuzzWSReader(f *testing.F) {
	for _, s := range []string{"81 05 48 65 6c 6c 6f", "81 85 37 fa 21 3d 7f 9f 4d 51 58", "01 03 48 65 6c 89 00 80 02 6c 6f",
		"82 7e 01 00", "82 7f 00 00 00 00 00 01 00 00", "88 02 03 e8", "c1 00", "01 00 81 00"} {
		f.Add(unhexFrame(s), false, uint8(3))
		f.Add(unhexFrame(s), true, uint8(1))
	}
	f.Fuzz(func(t *testing.T, in []byte, masked bool, chunk uint8) {
		const max = 1 << 10
		r := &wsReader{masked: masked, max: max}
		var got []wsEvent
		step := int(chunk%16) + 1
		for i := 0; i < len(in); i += step {
			err := r.feed(in[i:min(i+step, len(in))], func(op wsOp, p []byte) error {
				if len(p) > max || (op.control() && len(p) > maxControl) {
					t.Fatalf("handed over %d bytes of op %d, over the bound", len(p), op)
				}
				got = append(got, wsEvent{op, string(p)})
				return nil
			})
			if len(r.msg) > max || cap(r.msg) > 2*max+64 || len(r.ctl) > maxControl {
				t.Fatalf("reader holds %d (cap %d) message bytes and %d control bytes", len(r.msg), cap(r.msg), len(r.ctl))
			}
			if err != nil {
				return
			}
		}
		whole, err := readAll(in, masked, max, len(in)+1)
		if err != nil || fmt.Sprint(whole) != fmt.Sprint(got) {
			t.Fatalf("fed whole: %v, %v; in pieces of %d: %v", whole, err, step, got)
		}
		var again []byte
		for _, ev := range got {
			again = appendFrame(again, ev.op, []byte(ev.payload), masked)
		}
		if back, err := readAll(again, masked, max, 7); err != nil || fmt.Sprint(back) != fmt.Sprint(got) {
			t.Fatalf("re-framed: %v, %v; want %v", back, err, got)
		}
	})
}
