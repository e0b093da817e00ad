package search_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ordo-shop/ordo/internal/testkit"
	"github.com/ordo-shop/ordo/projections/search"
)

// flakyEnd is a log that does not answer its first fails calls.
type flakyEnd struct {
	search.LogEnd
	fails int
}

func (f *flakyEnd) LastSeq(ctx context.Context, aggType string) (uint64, error) {
	if f.fails > 0 {
		f.fails--
		return 0, errors.New("nats: timeout")
	}
	return f.LogEnd.LastSeq(ctx, aggType)
}

// TestAnIndexBelongsToOneLog: a store waits until it knows the live
// index is its log's, retrying while the log does not answer, and
// refuses the index of another log: by the identity the index recorded
// and, without one, by checkpoints past the log's end.
func TestAnIndexBelongsToOneLog(t *testing.T) {
	if testing.Short() {
		t.Skip("needs Elasticsearch")
	}
	e := newEnv(t, 4)
	e.place(0, 20, 4, nil)
	// The first log's store, as orderd opens it: with the log's identity.
	mine := e.openAs(e.log.Partitions(), "log-one")
	if err := e.runner(mine.Sink()).CatchUp(e.ctx, 0); err != nil {
		t.Fatal(err)
	}
	var retries []error
	flaky := &flakyEnd{LogEnd: e.log, fails: 2}
	if err := mine.WaitOwned(e.ctx, flaky, time.Millisecond, func(err error) { retries = append(retries, err) }); err != nil || len(retries) != 2 {
		t.Fatalf("own index: %v after %d retries (%v), want nil after 2", err, len(retries), retries)
	}

	// Another log (a new data dir) finds the same index.
	other, _ := testkit.OrderLog(t, 4)
	theirs := e.openAs(other.Partitions(), "log-two")
	err := theirs.WaitOwned(e.ctx, other, time.Millisecond, nil)
	if !errors.Is(err, search.ErrOtherLog) || !strings.Contains(err.Error(), "built from log log-one") {
		t.Fatalf("another log's index, by identity: %v", err)
	}
	// Without an identity to compare, the checkpoints past the other
	// log's end (it is empty) give it away.
	anonymous := e.openAs(other.Partitions(), "")
	if err := anonymous.CheckOwned(e.ctx, other); !errors.Is(err, search.ErrOtherLog) || !strings.Contains(err.Error(), "the log ends at 0") {
		t.Fatalf("another log's index, by checkpoints: %v", err)
	}

	// A wait that cannot check ends with its context.
	ctx, cancel := context.WithTimeout(e.ctx, 50*time.Millisecond)
	defer cancel()
	if err := mine.WaitOwned(ctx, &flakyEnd{LogEnd: e.log, fails: 1 << 30}, time.Millisecond, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a log that never answers: %v", err)
	}
}

// TestSlotServesOnlyAStoreItMay: an empty slot and a refused one answer
// every call with ErrUnavailable (so the API says 503), naming why.
func TestSlotServesOnlyAStoreItMay(t *testing.T) {
	var slot search.Slot
	if _, err := slot.Search(t.Context(), search.Query{}); !search.IsUnavailable(err) || !strings.Contains(err.Error(), "starting") {
		t.Fatalf("empty slot: %v", err)
	}
	if _, err := slot.Status(t.Context(), 0); !search.IsUnavailable(err) {
		t.Fatalf("empty slot, status: %v", err)
	}
	c, err := search.NewClient("http://127.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	st, err := search.New(c, search.Options{Partitions: 1})
	if err != nil {
		t.Fatal(err)
	}
	slot.Set(st)
	if got, err := slot.Store(); got != st || err != nil {
		t.Fatalf("slot with a store: %v %v", got, err)
	}
	slot.Refuse(search.ErrOtherLog)
	if _, err := slot.WaitFor(t.Context(), 1); !search.IsUnavailable(err) || !strings.Contains(err.Error(), "another log") {
		t.Fatalf("refused slot: %v", err)
	}
	if slot.Held() != st {
		t.Fatal("a refused slot no longer holds its store")
	}
}

func TestLocalPrefix(t *testing.T) {
	if got := search.LocalPrefix("ordo-", "0f3a", "/data/a"); got != "ordo-0f3a-" {
		t.Errorf("with a log id: %q", got)
	}
	a, b := search.LocalPrefix("ordo-", "", "/data/a"), search.LocalPrefix("ordo-", "", "/data/b")
	if a == b || !strings.HasPrefix(a, "ordo-") || !strings.HasSuffix(a, "-") || len(a) != len("ordo-")+8+1 {
		t.Errorf("without a log id: %q and %q, want ordo-<8 hex digits>- apart", a, b)
	}
	if a != search.LocalPrefix("ordo-", "", "/data/a/") {
		t.Error("the same data dir, written another way, gets another prefix")
	}
}
