package aggregates

import (
	"fmt"

	"github.com/ordo-shop/ordo/events"
)

// Decider describes one aggregate type as a pair of pure functions.
//
// Decide validates a command against the current state and returns the
// events it produces (none when nothing changes) or a *[DomainError].
// Evolve applies one event to the state and never fails on a known event.
// Both must be free of side effects: the command handler may call them
// again for the same input when it retries after a conflict.
type Decider[S, C any] struct {
	// Type is the aggregate type name used in the log: "order",
	// "inventory" or "payment".
	Type string
	// Initial returns the state of an aggregate that has no events yet.
	Initial func(id string) S
	// Decide returns the events a command produces from a state.
	Decide func(state S, cmd C) ([]events.Payload, error)
	// Evolve returns the state after one event.
	Evolve func(state S, e events.Payload) S
}

// Fold applies events to a state in order.
func (d Decider[S, C]) Fold(state S, evs []events.Payload) S {
	for _, e := range evs {
		state = d.Evolve(state, e)
	}
	return state
}

// Kind classifies a domain error for the edges that report it.
type Kind int

// The kinds of domain error.
const (
	// KindRule: the command is well formed but a business rule refuses it
	// in the current state (HTTP 422).
	KindRule Kind = iota
	// KindInvalid: the command itself is malformed (HTTP 400).
	KindInvalid
	// KindNotFound: the aggregate the command needs does not exist (404).
	KindNotFound
	// KindConflict: the command collides with an earlier one (409).
	KindConflict
)

// DomainError is a refused command. Code is a stable machine-readable
// string such as "order_not_cancellable"; two DomainErrors match with
// errors.Is when their codes are equal, so packages export sentinel values
// and return detailed copies made with [DomainError.With].
type DomainError struct {
	Code    string
	Kind    Kind
	Message string
}

// NewError returns a sentinel domain error.
func NewError(kind Kind, code, message string) *DomainError {
	return &DomainError{Code: code, Kind: kind, Message: message}
}

func (e *DomainError) Error() string { return e.Message }

// Is reports whether target is a DomainError with the same code.
func (e *DomainError) Is(target error) bool {
	t, ok := target.(*DomainError)
	return ok && t.Code == e.Code
}

// With returns a copy of e whose message has the given detail appended.
func (e *DomainError) With(format string, args ...any) *DomainError {
	return &DomainError{Code: e.Code, Kind: e.Kind, Message: e.Message + ": " + fmt.Sprintf(format, args...)}
}

// ErrInvalidText: a command carries text that breaks its field's
// [events.TextRule] (invalid UTF-8, a control character, a noncharacter,
// too long). The deciders check every text a command would put in an
// event, whatever the API already checked, because a value the read
// models cannot store must never enter the log.
var ErrInvalidText = NewError(KindInvalid, "invalid_text", "invalid text")

// RefuseText returns nil if err is nil, and otherwise [ErrInvalidText]
// with the command's name and err (an *[events.TextError] naming the
// field) as its detail.
func RefuseText(command string, err error) error {
	if err == nil {
		return nil
	}
	return ErrInvalidText.With("%s: %v", command, err)
}
