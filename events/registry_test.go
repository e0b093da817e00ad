package events

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestDecodeRefusals(t *testing.T) {
	r := mustStandard(t)
	tests := []struct {
		name string
		e    Event
		want error
	}{
		{"unknown type", Event{Type: "order.teleported", SchemaVersion: 1, Data: json.RawMessage(`{}`)}, ErrUnknownEventType},
		{"future version", Event{Type: "order.placed", SchemaVersion: 2, Data: json.RawMessage(`{}`)}, ErrSchemaVersion},
		{"future version of an upcast type", Event{Type: "inventory.priced", SchemaVersion: 3, Data: json.RawMessage(`{}`)}, ErrSchemaVersion},
		{"version 0", Event{Type: "order.paid", SchemaVersion: 0, Data: json.RawMessage(`{}`)}, ErrSchemaVersion},
		{"malformed data", Event{Type: "order.paid", SchemaVersion: 1, Data: json.RawMessage(`{"order_id":5}`)}, nil},
		{"bad v1 price", Event{Type: "inventory.priced", SchemaVersion: 1, Data: json.RawMessage(`{"sku":"A","name":"a","price":1.999,"currency":"CNY"}`)}, ErrInvalidMoney},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := r.Decode(tt.e)
			if err == nil {
				t.Fatalf("Decode = %#v, want an error", p)
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("Decode error %v, want %v", err, tt.want)
			}
		})
	}

	c := newCommit(3, `{}`)
	c.Events[0].Type = "order.teleported"
	if _, err := r.DecodeAll(c); !errors.Is(err, ErrUnknownEventType) || !strings.Contains(err.Error(), "o-1 v3") {
		t.Errorf("DecodeAll = %v, want ErrUnknownEventType naming o-1 v3", err)
	}
}

// testPayload and friends are payload types for registries built here.
type testPayload struct {
	A string `json:"a"`
}

func (testPayload) EventType() string { return "test.happened" }

type impostor struct{}

func (impostor) EventType() string { return "order.placed" }

type unnamed struct{}

func (unnamed) EventType() string { return "" }

type pointerPayload struct{}

func (*pointerPayload) EventType() string { return "test.pointer" }

type notStruct string

func (notStruct) EventType() string { return "test.string" }

func TestEncodeRefusals(t *testing.T) {
	r := mustStandard(t)
	if _, err := r.Encode(testPayload{}); !errors.Is(err, ErrUnknownEventType) {
		t.Errorf("Encode(unregistered) = %v, want ErrUnknownEventType", err)
	}
	if _, err := r.Encode(impostor{}); err == nil {
		t.Error("Encode accepted a payload of another Go type under a registered name")
	}
	if _, err := r.Encode(&OrderPaid{OrderID: "o-1"}); err == nil {
		t.Error("Encode accepted a pointer payload")
	}
}

func TestRegisterRefusals(t *testing.T) {
	r := NewRegistry()
	if err := Register[testPayload](r, 1); err != nil {
		t.Fatal(err)
	}
	for name, err := range map[string]error{
		"duplicate":       Register[testPayload](r, 2),
		"version 0":       Register[OrderPaid](r, 0),
		"empty type":      Register[unnamed](r, 1),
		"pointer":         Register[*pointerPayload](r, 1),
		"not a struct":    Register[notStruct](r, 1),
		"nil upcaster":    r.RegisterUpcaster("test.happened", 1, nil),
		"upcaster from 0": r.RegisterUpcaster("test.happened", 0, func(d json.RawMessage) (json.RawMessage, error) { return d, nil }),
	} {
		if err == nil {
			t.Errorf("%s: registered", name)
		}
	}
	id := func(d json.RawMessage) (json.RawMessage, error) { return d, nil }
	if err := r.RegisterUpcaster("test.happened", 1, id); err != nil {
		t.Fatal(err)
	}
	if err := r.RegisterUpcaster("test.happened", 1, id); err == nil {
		t.Error("duplicate upcaster registered")
	}
}

// TestUpcasterChain runs a made-up type through two upcasting steps and
// shows what happens when a step is missing or fails.
func TestUpcasterChain(t *testing.T) {
	rename := func(from, to string) Upcaster {
		return func(d json.RawMessage) (json.RawMessage, error) {
			var m map[string]json.RawMessage
			if err := json.Unmarshal(d, &m); err != nil {
				return nil, err
			}
			m[to] = m[from]
			delete(m, from)
			return json.Marshal(m)
		}
	}
	full := NewRegistry()
	if err := errors.Join(
		Register[testPayload](full, 3),
		full.RegisterUpcaster("test.happened", 1, rename("x", "y")),
		full.RegisterUpcaster("test.happened", 2, rename("y", "a")),
	); err != nil {
		t.Fatal(err)
	}
	for v, data := range map[int]string{1: `{"x":"hi"}`, 2: `{"y":"hi"}`, 3: `{"a":"hi"}`} {
		p, err := full.Decode(Event{Type: "test.happened", SchemaVersion: v, Data: json.RawMessage(data)})
		if err != nil {
			t.Fatalf("v%d: %v", v, err)
		}
		if p != (testPayload{A: "hi"}) {
			t.Errorf("v%d decoded as %#v", v, p)
		}
	}

	gap := NewRegistry()
	if err := errors.Join(
		Register[testPayload](gap, 3),
		gap.RegisterUpcaster("test.happened", 1, rename("x", "y")),
	); err != nil {
		t.Fatal(err)
	}
	for _, v := range []int{1, 2} {
		_, err := gap.Decode(Event{Type: "test.happened", SchemaVersion: v, Data: json.RawMessage(`{"x":"hi"}`)})
		if !errors.Is(err, ErrSchemaVersion) || !strings.Contains(err.Error(), "no upcaster to v3") {
			t.Errorf("v%d with the v2→v3 upcaster missing: %v", v, err)
		}
	}

	boom := errors.New("boom")
	failing := NewRegistry()
	if err := errors.Join(
		Register[testPayload](failing, 2),
		failing.RegisterUpcaster("test.happened", 1, func(json.RawMessage) (json.RawMessage, error) { return nil, boom }),
	); err != nil {
		t.Fatal(err)
	}
	if _, err := failing.Decode(Event{Type: "test.happened", SchemaVersion: 1, Data: json.RawMessage(`{}`)}); !errors.Is(err, boom) {
		t.Errorf("failing upcaster: %v, want it wrapped", err)
	}
}
