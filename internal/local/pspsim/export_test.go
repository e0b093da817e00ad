package pspsim

import (
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/ordo-shop/ordo/events"
	"github.com/ordo-shop/ordo/internal/local/datadir"
	"github.com/ordo-shop/ordo/internal/psp"
)

// SetCompaction changes the compaction thresholds until restore is
// called.
func SetCompaction(ratio, min int) (restore func()) {
	r, m := compactRatio, compactMin
	compactRatio, compactMin = ratio, min
	return func() { compactRatio, compactMin = r, m }
}

// Create creates an intent as POST /v1/intents does, without HTTP.
func (s *Sim) Create(req psp.CreateIntentRequest, key string) (psp.Intent, error) {
	in, _, err := s.create(req, key)
	return in, err
}

// Fill adds n captured intents in memory and, with a state file, writes
// the file with them (one compaction): the stored intents a benchmark
// starts from.
func (s *Sim) Fill(n int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now().UTC()
	for i := range n {
		id := randomID("pi_")
		s.intents[id] = &psp.Intent{ID: id, Reference: fmt.Sprintf("pay_fill_%d", i), OrderID: fmt.Sprintf("ord_fill_%d", i),
			Amount: events.Money{Amount: 1999, Currency: "CNY"}, Status: psp.StatusCaptured, CaptureRef: randomID("ch_"),
			CheckoutURL: s.BaseURL() + "/pay/" + id + "?" + s.linkQuery(id, now.Add(time.Hour)), Version: 2, Created: now, Updated: now}
		s.byKey[fmt.Sprintf("pay_fill_%d:create", i)] = id
	}
	if s.journal == nil {
		return nil
	}
	return s.journal.compact(s.intents, s.byKey, s.manual)
}

// SaveWholeFile writes every intent to path as one JSON document through
// an atomic rewrite, as the simulator did on every change before the
// journal (decision 025): the "before" of the benchmarks.
func (s *Sim) SaveWholeFile(path string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, err := json.Marshal(savedState{Intents: s.intents, ByKey: s.byKey, Manual: s.manual})
	if err != nil {
		return err
	}
	return datadir.Write(path, datadir.FileOptions{}, func(w io.Writer) error {
		_, err := w.Write(b)
		return err
	})
}

// Capture, Void and Refund are the API's calls without HTTP.
func (s *Sim) Capture(id string) (psp.Intent, error)                     { return s.capture(id) }
func (s *Sim) Void(id string) (psp.Intent, error)                        { return s.void(id) }
func (s *Sim) Refund(id string, amount events.Money) (psp.Intent, error) { return s.refund(id, amount) }
