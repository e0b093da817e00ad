package search

import (
	"context"
	"fmt"
	"sync/atomic"

	"github.com/ordo-shop/ordo/projections"
)

// Slot serves search from a [Store] that may arrive late (while a local
// Elasticsearch starts) and may be refused (its index belongs to another
// log, see [Store.WaitOwned]): while it is empty, and once refused,
// every call fails with an error wrapping [ErrUnavailable], so the API
// answers 503. The zero Slot is empty; it is safe for concurrent use.
type Slot struct {
	st      atomic.Pointer[Store]
	refused atomic.Pointer[error]
}

// Set makes st the store the slot serves from.
func (s *Slot) Set(st *Store) { s.st.Store(st) }

// Held returns the store set, refused or not; nil while the slot is
// empty.
func (s *Slot) Held() *Store { return s.st.Load() }

// Refuse stops serving for good, saying why.
func (s *Slot) Refuse(why error) {
	err := fmt.Errorf("%w: %v", ErrUnavailable, why)
	s.refused.Store(&err)
}

// Store returns the store to serve from, or why there is none.
func (s *Slot) Store() (*Store, error) {
	if err := s.refused.Load(); err != nil {
		return nil, *err
	}
	st := s.st.Load()
	if st == nil {
		return nil, fmt.Errorf("%w: the local Elasticsearch is starting", ErrUnavailable)
	}
	return st, nil
}

// Search is [Store.Search] of the store served.
func (s *Slot) Search(ctx context.Context, q Query) (Result, error) {
	st, err := s.Store()
	if err != nil {
		return Result{}, err
	}
	return st.Search(ctx, q)
}

// WaitFor is [Store.WaitFor] of the store served.
func (s *Slot) WaitFor(ctx context.Context, seq uint64) (bool, error) {
	st, err := s.Store()
	if err != nil {
		return false, err
	}
	return st.WaitFor(ctx, seq)
}

// Status is [Store.Status] of the store served.
func (s *Slot) Status(ctx context.Context, streamLast uint64) (Status, error) {
	st, err := s.Store()
	if err != nil {
		return Status{}, err
	}
	return st.Status(ctx, streamLast)
}

// Quarantined is [Store.Quarantined] of the store served.
func (s *Slot) Quarantined(ctx context.Context) ([]projections.QuarantineView, error) {
	st, err := s.Store()
	if err != nil {
		return nil, err
	}
	return st.Quarantined(ctx)
}
