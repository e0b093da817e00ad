// Package aggregatetest holds the given/when/then helpers that the tests of
// Ordo's deciders share. Like the deciders it imports only the standard
// library (and testing).
package aggregatetest

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/ordo-shop/ordo/aggregates"
	"github.com/ordo-shop/ordo/events"
)

// Check decides when on state s and compares the outcome with then, or,
// when wantErr is set, checks that the command is refused with an error
// matching wantErr (errors.Is), of the same kind, and with no events.
func Check[S, C any](t testing.TB, decide func(S, C) ([]events.Payload, error), s S, when C, then []events.Payload, wantErr error) {
	t.Helper()
	got, err := decide(s, when)
	if wantErr != nil {
		if !errors.Is(err, wantErr) {
			t.Fatalf("Decide(%#v) error = %v, want %v", when, err, wantErr)
		}
		var de, sentinel *aggregates.DomainError
		if !errors.As(err, &de) || !errors.As(wantErr, &sentinel) || de.Kind != sentinel.Kind {
			t.Errorf("error %#v does not have the kind of %#v", err, wantErr)
		}
		if got != nil {
			t.Errorf("refused command returned events %#v", got)
		}
		return
	}
	if err != nil {
		t.Fatalf("Decide(%#v) error = %v, want events %#v", when, err, then)
	}
	if !reflect.DeepEqual(got, then) {
		t.Fatalf("Decide(%#v) =\n%#v\nwant\n%#v", when, got, then)
	}
}

// ViaJSON encodes events as the log stores them and decodes them back, so
// a test can check that state folded from the log equals state folded
// from the events the decider returned.
func ViaJSON(t testing.TB, reg *events.Registry, log []events.Payload) []events.Payload {
	t.Helper()
	out := make([]events.Payload, 0, len(log))
	for _, p := range log {
		e, err := reg.Encode(p)
		if err != nil {
			t.Fatal(err)
		}
		b, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		var back events.Event
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		q, err := reg.Decode(back)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, q)
	}
	return out
}

// BadText holds values no text field allows, by what is wrong with them:
// each must be refused with [aggregates.ErrInvalidText]. "too long" is
// longer than the longest rule ([events.URLText]).
var BadText = map[string]string{
	"NUL":           "a\x00b",
	"C1 control":    "a\u0085b",
	"escape":        "a\x1bb",
	"invalid UTF-8": "a\xffb",
	"noncharacter":  "a\uFFFEb",
	"too long":      strings.Repeat("x", events.URLText.MaxRunes+1),
}

// CheckTextRefused decides when on state s and checks that it is refused
// with [aggregates.ErrInvalidText] (kind Invalid) whose message names
// field.
func CheckTextRefused[S, C any](t testing.TB, decide func(S, C) ([]events.Payload, error), s S, when C, field string) {
	t.Helper()
	Check(t, decide, s, when, nil, aggregates.ErrInvalidText)
	if _, err := decide(s, when); err == nil || !strings.Contains(err.Error(), field+" ") {
		t.Errorf("error %v does not name %s", err, field)
	}
}
