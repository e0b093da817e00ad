package audit

import (
	"context"

	"github.com/ordo-shop/ordo/eventlog"
)

// Log is what an audit reads of the event log, in the port's types
// (package eventlog). Package streams' Store implements it (checked in
// audit_test.go), so audit does not import the JetStream adapter.
type Log interface {
	// ReplayRaw calls fn with every message of aggType's stream from
	// fromSeq on, as stored, in sequence order.
	ReplayRaw(ctx context.Context, aggType string, fromSeq uint64, fn func(eventlog.StoredMsg) error) error
	// LoadRaw calls fn with one aggregate's messages after afterSeq, as
	// stored, in sequence order.
	LoadRaw(ctx context.Context, aggType, id string, afterSeq uint64, fn func(eventlog.StoredMsg) error) error
	// Load returns one aggregate's commits after afterSeq, decoded.
	Load(ctx context.Context, aggType, id string, afterSeq uint64) ([]eventlog.Record, error)
	// LastSeq returns the last sequence of aggType's stream.
	LastSeq(ctx context.Context, aggType string) (uint64, error)
	// SubjectID returns the aggregate id a subject of aggType's stream
	// names, and whether the subject is the one that id's commits are
	// stored under (its partition token right).
	SubjectID(aggType, subject string) (id string, ok bool)
	// Subject returns the subject an aggregate's commits are stored under.
	Subject(aggType, id string) (string, error)
	// StreamName returns the name of aggType's stream.
	StreamName(aggType string) (string, error)
	// SignedFrom returns the sequence from which on every commit of
	// aggType's stream must be signed, 0 if none is recorded; metadata
	// that is no sequence is an error wrapping [eventlog.ErrBadSignedFrom].
	SignedFrom(ctx context.Context, aggType string) (uint64, error)
}

// Types are the aggregate types in log-export order: the streams a
// whole-log check reads.
var Types = []string{eventlog.TypeOrder, eventlog.TypeInventory, eventlog.TypePayment}

// ValidType reports whether t names an aggregate type of the log.
func ValidType(t string) bool {
	switch t {
	case eventlog.TypeOrder, eventlog.TypeInventory, eventlog.TypePayment:
		return true
	}
	return false
}
