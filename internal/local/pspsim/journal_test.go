package pspsim_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/ordo-shop/ordo/events"
	"github.com/ordo-shop/ordo/internal/local/pspsim"
	"github.com/ordo-shop/ordo/internal/psp"
)

func newSim(t *testing.T, cfg pspsim.Config) *pspsim.Sim {
	t.Helper()
	s, err := pspsim.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func lines(t *testing.T, file string) int {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Count(b, []byte("\n"))
}

// makeIntents creates n intents from 8 goroutines (sharing fsyncs) and
// moves them on: a third captured, a third declined, the rest pending
// (of which the manual ones authorized, every fifth voided), and every
// captured one in ten refunded.
func makeIntents(t *testing.T, s *pspsim.Sim, n int) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for w := range 8 {
		wg.Go(func() {
			for i := w; i < n; i += 8 {
				method := ""
				if i%2 == 1 {
					method = "manual"
				}
				ref := fmt.Sprintf("pay_%d", i)
				in, err := s.Create(psp.CreateIntentRequest{Reference: ref, OrderID: fmt.Sprintf("ord_%d", i),
					Amount: events.Money{Amount: int64(100 + i), Currency: "CNY"}, CaptureMethod: method}, ref+":create")
				if err == nil {
					switch i % 3 {
					case 0:
						if in, err = s.Approve(in.ID); err == nil && i%2 == 1 {
							_, err = s.Capture(in.ID)
						}
					case 1:
						_, err = s.Decline(in.ID, "card_declined")
					case 2:
						if i%2 == 1 {
							_, err = s.Approve(in.ID)
						} else if i%5 == 0 {
							_, err = s.Void(in.ID)
						}
					}
				}
				if err == nil && i%3 == 0 && i%10 == 0 {
					_, err = s.Refund(in.ID, events.Money{Amount: int64(100 + i), Currency: "CNY"})
				}
				if err != nil {
					errs <- fmt.Errorf("intent %d: %w", i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// TestJournalKeepsThousandsOfIntentsAcrossRestarts: every intent, in
// every state, with its key and capture method, is back after a
// restart; the journal was compacted to one line per intent on the way.
func TestJournalKeepsThousandsOfIntentsAcrossRestarts(t *testing.T) {
	file := filepath.Join(t.TempDir(), "psp-sim.json")
	cfg := pspsim.Config{Mode: pspsim.ModeManual, StateFile: file, LinkSecret: []byte("link-secret-link-secret-link-secret!")}
	s1 := newSim(t, cfg)
	const n = 3000
	makeIntents(t, s1, n)
	want := s1.Intents()
	if len(want) != n {
		t.Fatalf("%d intents, want %d", len(want), n)
	}
	// A reader beside the live simulator (orderctl check) sees the same.
	if got, err := pspsim.ReadIntents(file); err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("ReadIntents beside the live simulator: %d intents, %v; want the %d it holds", len(got), err, len(want))
	}
	if err := s1.Close(); err != nil {
		t.Fatal(err)
	}
	if l := lines(t, file); l <= n {
		t.Fatalf("the journal has %d lines for %d intents and their changes", l, n)
	}

	s2 := newSim(t, cfg)
	if got := s2.Intents(); !reflect.DeepEqual(got, want) {
		t.Fatalf("after the restart %d intents differ from the %d before", len(got), len(want))
	}
	if l := lines(t, file); l != n {
		t.Fatalf("after the restart the journal has %d lines, want one per intent (%d)", l, n)
	}
	// Keys and capture methods survived: the same key is the same
	// intent, a manual one authorizes before it captures.
	again, err := s2.Create(psp.CreateIntentRequest{Reference: "pay_11", OrderID: "ord_11", Amount: events.Money{Amount: 111, Currency: "CNY"}}, "pay_11:create")
	if err != nil || again.Reference != "pay_11" || again.Status != psp.StatusAuthorized {
		t.Fatalf("create again with a stored key: %+v %v", again, err)
	}
	if got, err := s2.Capture(again.ID); err != nil || got.Status != psp.StatusCaptured {
		t.Fatalf("capture after the restart: %+v %v", got, err)
	}
	if err := s2.Close(); err != nil {
		t.Fatal(err)
	}
	s3 := newSim(t, cfg)
	if got := s3.Intents(); len(got) != n {
		t.Fatalf("after a second restart: %d intents", len(got))
	}
}

// TestJournalIgnoresATornTail: a crash in the middle of a write leaves a
// partial last line; the simulator starts with every complete change,
// cuts the tail off, and goes on appending.
func TestJournalIgnoresATornTail(t *testing.T) {
	file := filepath.Join(t.TempDir(), "psp-sim.json")
	cfg := pspsim.Config{Mode: pspsim.ModeManual, StateFile: file}
	s1 := newSim(t, cfg)
	makeIntents(t, s1, 60)
	want := s1.Intents()
	if err := s1.Close(); err != nil {
		t.Fatal(err)
	}
	for _, tail := range []string{`{"intent":{"id":"pi_torn","refer`, "{\"intent\":{\"id\":\"pi_torn\"}}\n\x00\x00\x00", "\x00\x00\x00\x00"} {
		f, err := os.OpenFile(file, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteString(tail); err != nil {
			t.Fatal(err)
		}
		f.Close()
		s2, err := pspsim.New(cfg)
		if err != nil {
			t.Fatalf("tail %q: %v", tail, err)
		}
		got := s2.Intents()
		if strings.Contains(tail, `"pi_torn"}}`) { // a complete line before the torn part counts
			want = append(want, psp.Intent{ID: "pi_torn"})
		}
		if len(got) != len(want) {
			t.Fatalf("tail %q: %d intents, want %d", tail, len(got), len(want))
		}
		if b, _ := os.ReadFile(file); bytes.Contains(b, []byte("\x00")) || bytes.Contains(b, []byte(`"refer`+"\n")) || !bytes.HasSuffix(b, []byte("\n")) {
			t.Fatalf("tail %q is still in the file", tail)
		}
		in, err := s2.Create(psp.CreateIntentRequest{Reference: "pay_new" + fmt.Sprint(len(want)), Amount: events.Money{Amount: 1, Currency: "CNY"}}, "")
		if err != nil {
			t.Fatal(err)
		}
		if err := s2.Close(); err != nil {
			t.Fatal(err)
		}
		want = append(want, in)
		s3 := newSim(t, cfg)
		if n := len(s3.Intents()); n != len(want) {
			t.Fatalf("tail %q: after appending and restarting %d intents, want %d", tail, n, len(want))
		}
		_ = s3.Close()
	}
}

// TestJournalRefusesDamageBeforeItsEnd: a line that does not parse with
// good lines after it is not a crash's torn tail; New says where.
func TestJournalRefusesDamageBeforeItsEnd(t *testing.T) {
	file := filepath.Join(t.TempDir(), "psp-sim.json")
	cfg := pspsim.Config{StateFile: file}
	s := newSim(t, cfg)
	makeIntents(t, s, 10)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	b = bytes.Replace(b, []byte("\n"), []byte("\nnot json\n"), 1)
	if err := os.WriteFile(file, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := pspsim.New(cfg); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("New on a damaged journal: %v, want an error naming line 2", err)
	}
}

// TestJournalReadsTheOldStateFile: the one-document state file of earlier
// versions is read and rewritten as a journal.
func TestJournalReadsTheOldStateFile(t *testing.T) {
	dir := t.TempDir()
	old := filepath.Join(dir, "old.json")
	s := newSim(t, pspsim.Config{Mode: pspsim.ModeManual})
	makeIntents(t, s, 40)
	want := s.Intents()
	if err := s.SaveWholeFile(old); err != nil {
		t.Fatal(err)
	}
	s2 := newSim(t, pspsim.Config{Mode: pspsim.ModeManual, StateFile: old})
	if got := s2.Intents(); !reflect.DeepEqual(got, want) {
		t.Fatalf("old state file: %d intents, want %d as they were", len(got), len(want))
	}
	if l := lines(t, old); l != len(want) {
		t.Fatalf("the old file became %d lines, want %d", l, len(want))
	}
	if again, err := s2.Create(psp.CreateIntentRequest{Reference: "pay_3", OrderID: "ord_3", Amount: events.Money{Amount: 103, Currency: "CNY"}, CaptureMethod: "manual"}, "pay_3:create"); err != nil || again.Reference != "pay_3" {
		t.Fatalf("a key of the old file: %+v %v", again, err)
	}
}

// TestJournalCompactsWhileServing: past the ratio of lines to intents the
// next change rewrites the file with one line per intent, and nothing is
// lost.
func TestJournalCompactsWhileServing(t *testing.T) {
	defer pspsim.SetCompaction(1, 4)()
	file := filepath.Join(t.TempDir(), "psp-sim.json")
	cfg := pspsim.Config{Mode: pspsim.ModeManual, StateFile: file}
	s := newSim(t, cfg)
	makeIntents(t, s, 30)
	want := s.Intents()
	if l := lines(t, file); l > len(want)+1 {
		t.Fatalf("%d lines for %d intents: not compacted while serving", l, len(want))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if got := newSim(t, cfg).Intents(); !reflect.DeepEqual(got, want) {
		t.Fatalf("after compactions and a restart: %d intents, want %d as they were", len(got), len(want))
	}
}
