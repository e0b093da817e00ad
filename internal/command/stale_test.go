package command_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/ordo-shop/ordo/aggregates/inventory"
	"github.com/ordo-shop/ordo/eventlog"
	"github.com/ordo-shop/ordo/internal/command"
	"github.com/ordo-shop/ordo/internal/testkit"
)

// staleRounds is how many fresh SKUs each stale-replica test uses. With
// the lagging mirrors answering about half of all direct gets, a handler
// that decided on them would go wrong in one of these rounds with near
// certainty.
const staleRounds = 20

// staleFixture is a fixture whose INVENTORY direct gets are often
// answered by mirrors that have applied no writes since they were made,
// as a lagging replica answers them.
func staleFixture(t *testing.T) fixture {
	t.Helper()
	f := newFixture(t)
	h := f.handler(t, f.store)
	define(t, h, "seed", 1)
	define(t, h, "probe", 1)
	keep, _ := f.js.Subject(eventlog.TypeInventory, "seed")
	probe, _ := f.js.Subject(eventlog.TypeInventory, "probe")
	testkit.LaggingMirrors(t, f.nc, "INVENTORY", keep, probe, 2)
	return f
}

// A handler always finds an aggregate another instance wrote, the first
// time it hears of it: a cancel through the other orderd instance used to
// answer order_not_found.
func TestFindsWhatAnotherInstanceWrote(t *testing.T) {
	f := staleFixture(t)
	other, this := f.handler(t, f.store), f.handler(t, f.store)
	for i := range staleRounds {
		sku := fmt.Sprintf("fresh-%d", i)
		define(t, other, sku, 5)
		if err := restock(this, sku); err != nil {
			t.Fatalf("round %d: restock a SKU the other instance defined: %v", i, err)
		}
	}
}

// An aggregate found absent is not remembered as absent: once another
// instance creates it, this one sees it (the order stayed "not found" on
// one instance for minutes).
func TestAbsentIsNotCached(t *testing.T) {
	f := staleFixture(t)
	other, this := f.handler(t, f.store), f.handler(t, f.store)
	for i := range staleRounds {
		sku := fmt.Sprintf("later-%d", i)
		if res, err := this.State(context.Background(), sku, command.Cached); err != nil || res.State.Exists {
			t.Fatalf("round %d: state before it exists: %+v, %v", i, res.State, err)
		}
		define(t, other, sku, 5)
		res, err := this.State(context.Background(), sku, command.Cached)
		if err != nil || !res.State.Exists {
			t.Fatalf("round %d: state after the other instance defined it: exists %v, %v", i, res.State.Exists, err)
		}
	}
}

// A command whose commit is already in the log (a retry or a redelivery)
// answers with a state that includes that commit: the checkout read a
// duplicate reservation without it, concluded the SKU was short and
// rejected an order whose stock was held.
func TestDuplicateAnswersWithItsOwnCommit(t *testing.T) {
	f := staleFixture(t)
	other, this := f.handler(t, f.store), f.handler(t, f.store)
	for i := range staleRounds {
		sku := fmt.Sprintf("dup-%d", i)
		define(t, other, sku, 5)
		if _, err := this.State(context.Background(), sku, command.Cached); err != nil { // cache it before the reservation
			t.Fatal(err)
		}
		req := command.Request[inventory.Command]{AggregateID: sku, CommandID: "reserve-" + sku, Command: inventory.Reserve{OrderID: "o-" + sku, Qty: 2}}
		first, err := other.Handle(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		res, err := this.Handle(context.Background(), req)
		if err != nil || !res.Duplicate {
			t.Fatalf("round %d: the same reservation again: duplicate %v, %v", i, res.Duplicate, err)
		}
		if res.Version != first.Version || !res.State.Reservations.Has("o-"+sku) {
			t.Fatalf("round %d: duplicate answered with version %d, holding o-%s %v; want version %d, holding it", i, res.Version, sku, res.State.Reservations.Has("o-"+sku), first.Version)
		}
	}
}
