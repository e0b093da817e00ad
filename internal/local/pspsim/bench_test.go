package pspsim_test

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/ordo-shop/ordo/events"
	"github.com/ordo-shop/ordo/internal/local/pspsim"
	"github.com/ordo-shop/ordo/internal/psp"
)

// BenchmarkIntentChanges creates and approves intents with 0, 10k and
// 50k intents stored, through the journal ("journal") and through the
// whole-file rewrite the simulator did before it ("rewrite": the change
// in memory, then every intent written to the file atomically, as
// save() did). Decision 025 and docs/benchmarks.md have the numbers:
//
//	go test -run '^$' -bench IntentChanges -benchtime 20x ./internal/local/pspsim/
func BenchmarkIntentChanges(b *testing.B) {
	for _, stored := range []int{0, 10_000, 50_000} {
		for _, op := range []string{"create", "approve"} {
			for _, store := range []string{"rewrite", "journal"} {
				b.Run(fmt.Sprintf("%s/stored=%d/%s", op, stored, store), func(b *testing.B) {
					benchIntentChanges(b, stored, op, store)
				})
			}
		}
	}
}

func benchIntentChanges(b *testing.B, stored int, op, store string) {
	file := filepath.Join(b.TempDir(), "psp-sim.json")
	cfg := pspsim.Config{Mode: pspsim.ModeManual}
	if store == "journal" {
		cfg.StateFile = file
	}
	s, err := pspsim.New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	if err := s.Fill(stored); err != nil {
		b.Fatal(err)
	}
	save := func() {
		if store == "rewrite" {
			if err := s.SaveWholeFile(file); err != nil {
				b.Fatal(err)
			}
		}
	}
	create := func(i int) psp.Intent {
		ref := fmt.Sprintf("pay_bench_%s_%d", op, i)
		in, err := s.Create(psp.CreateIntentRequest{Reference: ref, Amount: events.Money{Amount: 1999, Currency: "CNY"}}, ref+":create")
		if err != nil {
			b.Fatal(err)
		}
		save()
		return in
	}
	var pending []psp.Intent
	if op == "approve" {
		for i := range b.N {
			pending = append(pending, create(i))
		}
	}
	b.ResetTimer()
	for i := range b.N {
		if op == "create" {
			create(i)
			continue
		}
		if _, err := s.Approve(pending[i].ID); err != nil {
			b.Fatal(err)
		}
		save()
	}
}

// BenchmarkStart opens a journal of 50k intents with one superseded line
// each (replay, then the compaction on start):
//
//	go test -run '^$' -bench Start -benchtime 5x ./internal/local/pspsim/
func BenchmarkStart(b *testing.B) {
	file := filepath.Join(b.TempDir(), "psp-sim.json")
	cfg := pspsim.Config{Mode: pspsim.ModeManual, StateFile: file}
	for i := range b.N {
		b.StopTimer()
		s, err := pspsim.New(cfg)
		if err != nil {
			b.Fatal(err)
		}
		if i == 0 {
			if err := s.Fill(50_000); err != nil {
				b.Fatal(err)
			}
		}
		in, err := s.Create(psp.CreateIntentRequest{Reference: fmt.Sprint("pay_start_", i), Amount: events.Money{Amount: 1, Currency: "CNY"}}, "")
		if err == nil {
			_, err = s.Approve(in.ID) // a superseded line: the next start compacts
		}
		if err != nil {
			b.Fatal(err)
		}
		if err := s.Close(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		s, err = pspsim.New(cfg)
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		_ = s.Close()
		b.StartTimer()
	}
}
