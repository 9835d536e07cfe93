package policy

import (
	"encoding/json"
	"testing"
)

func TestStateText(t *testing.T) {
	for s := Green; s <= Red; s++ {
		b, err := s.MarshalText()
		if err != nil {
			t.Fatalf("%v.MarshalText() error: %v", s, err)
		}
		var got State
		if err := got.UnmarshalText(b); err != nil || got != s {
			t.Errorf("UnmarshalText(%q) = %v, %v; want %v", b, got, err, s)
		}
	}
	if _, err := State(9).MarshalText(); err == nil {
		t.Error("State(9).MarshalText() succeeded, want an error")
	}
	if got := State(9).String(); got != "State(9)" {
		t.Errorf("State(9).String() = %q", got)
	}
	var s State
	if err := s.UnmarshalText([]byte("orange")); err != nil || s != Orange {
		t.Errorf("UnmarshalText(orange) = %v, %v; want ORANGE", s, err)
	}
	if err := s.UnmarshalText([]byte("PURPLE")); err == nil {
		t.Error("UnmarshalText(PURPLE) succeeded, want an error")
	}
}

func TestStateJSON(t *testing.T) {
	b, err := json.Marshal(map[string]State{"risk": Orange})
	if err != nil || string(b) != `{"risk":"ORANGE"}` {
		t.Errorf("json.Marshal = %s, %v", b, err)
	}
}

func TestKindText(t *testing.T) {
	for k := SensorHit; k <= LimitExceeded; k++ {
		b, err := k.MarshalText()
		if err != nil {
			t.Fatal(err)
		}
		var got Kind
		if err := got.UnmarshalText(b); err != nil || got != k {
			t.Errorf("Kind UnmarshalText(%q) = %v, %v; want %v", b, got, err, k)
		}
	}
	if _, err := Kind(0).MarshalText(); err == nil {
		t.Error("Kind(0).MarshalText() succeeded, want an error")
	}
}

func TestEventStringHasNoSurprises(t *testing.T) {
	ev := Event{SensorHit, "openai-key", ClassProviderKey, DirRequest}
	if got, want := ev.String(), `sensor_hit "openai-key" (provider_key) in request`; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}
