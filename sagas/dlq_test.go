package sagas_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/ordo-shop/ordo/aggregates/order"
	"github.com/ordo-shop/ordo/eventlog"
	"github.com/ordo-shop/ordo/events"
	"github.com/ordo-shop/ordo/process"
	"github.com/ordo-shop/ordo/sagas"
	"github.com/ordo-shop/ordo/streams"
)

// flaky is a process manager whose order.placed handler fails (or
// panics) until it is fixed.
type flaky struct {
	broken atomic.Int32 // 0 fixed, 1 error, 2 panic
	calls  atomic.Int32
	mu     sync.Mutex
	done   map[string]int // order id -> successful handlings
}

func (f *flaky) Name() string      { return "flaky" }
func (f *flaky) Sources() []string { return []string{eventlog.TypeOrder} }
func (f *flaky) Handle(_ context.Context, m process.Message) error {
	for _, ev := range m.Events {
		placed, ok := ev.(events.OrderPlaced)
		if !ok {
			continue
		}
		f.calls.Add(1)
		switch f.broken.Load() {
		case 1:
			return errors.New("boom: the handler is broken")
		case 2:
			panic("kaboom")
		}
		f.mu.Lock()
		f.done[placed.OrderID]++
		f.mu.Unlock()
	}
	return nil
}

func (f *flaky) handled(id string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.done[id]
}

func deadLetters(t *testing.T, e *env) []streams.DeadLetter {
	t.Helper()
	dls, err := e.store.DeadLetters(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return dls
}

func TestFailingHandlerIsDeadLetteredAndRedrivenOnceFixed(t *testing.T) {
	f := &flaky{done: map[string]int{}}
	f.broken.Store(1)
	const retries = 2
	e := newEnv(t, envOptions{extra: []process.Manager{f}, runtime: sagas.Options{MaxRetries: retries}})
	e.putSKU("TEA", 1999, 10)
	id := e.place("cust-1", "k1", line{"TEA", 1})

	waitFor(t, "a dead letter", func() bool { return len(deadLetters(t, e)) == 1 })
	dl := deadLetters(t, e)[0]
	if dl.Owner != "flaky" || dl.Stream != "ORDERS" || dl.Seq == 0 || dl.Attempts != retries+1 || !strings.Contains(dl.Error, "boom") {
		t.Fatalf("dead letter %+v: want flaky, ORDERS, %d attempts, the handler's error", dl, retries+1)
	}
	c, err := events.Unmarshal(dl.Data)
	if err != nil || c.AggregateID != id || c.Events[0].Type != "order.placed" {
		t.Fatalf("dead letter data is not the order.placed commit: %v %v", c, err)
	}
	if calls := f.calls.Load(); calls != retries+1 {
		t.Fatalf("handler called %d times, want %d", calls, retries+1)
	}
	// One broken process manager does not hold up the others.
	e.waitOrder(id, order.StatusPaid)

	// Redriven while still broken: it fails again and replaces its dead
	// letter.
	if _, err := e.store.Redrive(context.Background(), dl.ID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the redrive to fail into a new dead letter", func() bool {
		dls := deadLetters(t, e)
		return len(dls) == 1 && dls[0].ID != dl.ID
	})
	again := deadLetters(t, e)[0]
	if again.RedriveOf != dl.ID || again.Seq != dl.Seq || again.Stream != dl.Stream {
		t.Fatalf("new dead letter %+v: want a redrive of %d for the same message", again, dl.ID)
	}

	// Fixed and redriven: handled once, and the dead letter is gone.
	f.broken.Store(0)
	if _, err := e.store.Redrive(context.Background(), again.ID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the redriven message to be handled", func() bool { return f.handled(id) == 1 })
	waitFor(t, "the dead letter to be removed", func() bool { return len(deadLetters(t, e)) == 0 })
	if _, err := e.store.Redrive(context.Background(), again.ID); !errors.Is(err, streams.ErrDeadLetterNotFound) {
		t.Fatalf("redrive of a removed dead letter: %v", err)
	}
}

func TestPanickingHandlerIsDeadLettered(t *testing.T) {
	f := &flaky{done: map[string]int{}}
	f.broken.Store(2)
	e := newEnv(t, envOptions{extra: []process.Manager{f}, runtime: sagas.Options{MaxRetries: 1}})
	e.putSKU("TEA", 1999, 10)
	e.place("cust-1", "k1", line{"TEA", 1})
	waitFor(t, "a dead letter", func() bool { return len(deadLetters(t, e)) == 1 })
	if dl := deadLetters(t, e)[0]; !strings.Contains(dl.Error, "kaboom") || dl.Attempts != 2 {
		t.Fatalf("dead letter %+v: want the panic after 2 attempts", dl)
	}
}

// TestUndecodableCommitIsDeadLetteredAndTheCheckoutGoesOn stores bytes
// that are no commit on ORDERS, under an order's subject, as a client
// with NATS credentials could: the checkout must dead-letter them at once
// (retrying cannot make them decode) and go on paying the orders placed
// before and after them.
func TestUndecodableCommitIsDeadLetteredAndTheCheckoutGoesOn(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.putSKU("TEA", 1999, 10)
	before := e.place("cust-1", "k1", line{"TEA", 1})
	subj, err := e.store.Subject(eventlog.TypeOrder, "ord_garbage")
	if err != nil {
		t.Fatal(err)
	}
	ack, err := e.js.Publish(context.Background(), subj, []byte("\x00 not a commit"))
	if err != nil {
		t.Fatal(err)
	}
	after := e.place("cust-1", "k2", line{"TEA", 1})
	e.waitOrder(before, order.StatusPaid)
	e.waitOrder(after, order.StatusPaid)
	waitFor(t, "the garbage to be dead-lettered", func() bool { return len(deadLetters(t, e)) == 1 })
	dl := deadLetters(t, e)[0]
	if dl.Owner != "checkout" || dl.Stream != "ORDERS" || dl.Seq != ack.Sequence || dl.Attempts != 1 {
		t.Fatalf("dead letter %+v: want the checkout's, ORDERS seq %d, after one attempt", dl, ack.Sequence)
	}
}
