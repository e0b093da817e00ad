package inventory_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/ordo-shop/ordo/aggregates"
	"github.com/ordo-shop/ordo/aggregates/aggregatetest"
	"github.com/ordo-shop/ordo/aggregates/inventory"
	"github.com/ordo-shop/ordo/events"
)

// TestRandomHistories drives a SKU with random commands, as a flash sale
// with operators adjusting stock would, and checks that deciding and
// evolving agree:
//
//   - OnHand ≥ Reserved ≥ 0 at every step, Reserved and Sold match the
//     per-order maps, and no order both holds and committed a reservation;
//   - a refused command returns a DomainError and no events;
//   - a command whose events changed the state produces none when
//     repeated (Restock excepted: it adds);
//   - folding the whole log, also after a trip through the JSON registry,
//     rebuilds the state reached step by step.
func TestRandomHistories(t *testing.T) {
	reg, err := events.Standard()
	if err != nil {
		t.Fatal(err)
	}
	d := inventory.Decider()
	rng := rand.New(rand.NewPCG(3, 4))
	var reserved, failed, committedN, releasedN, refusedBelow int

	randomCommand := func() inventory.Command {
		order := fmt.Sprintf("o-%d", rng.IntN(8))
		switch rng.IntN(10) {
		case 0:
			cur := "CNY"
			if rng.IntN(5) == 0 {
				cur = "EUR"
			}
			return inventory.Define{Name: []string{"Oolong", "Tea"}[rng.IntN(2)], Price: events.Money{Amount: int64(1000 + rng.IntN(3)), Currency: cur}, OnHand: int64(rng.IntN(25) - 2)}
		case 1:
			return inventory.Restock{Qty: int64(rng.IntN(6) - 1)}
		case 2, 3, 4, 5:
			return inventory.Reserve{OrderID: order, Qty: int64(rng.IntN(7))}
		case 6, 7:
			return inventory.Release{OrderID: order}
		default:
			return inventory.Commit{OrderID: order}
		}
	}

	for run := range 2000 {
		s := d.Initial(sku)
		var log []events.Payload
		for step := range 1 + rng.IntN(40) {
			cmd := randomCommand()
			if step == 0 && rng.IntN(4) > 0 {
				cmd = inventory.Define{Name: "Oolong", Price: cny(1999), OnHand: int64(rng.IntN(20))}
			}
			got, err := d.Decide(s, cmd)
			if err != nil {
				var de *aggregates.DomainError
				if !errors.As(err, &de) || de.Code == "" || got != nil {
					t.Fatalf("run %d: %#v: %v, %#v", run, cmd, err, got)
				}
				if errors.Is(err, inventory.ErrBelowReserved) {
					refusedBelow++
				}
				continue
			}
			next := d.Fold(s, got)
			for _, e := range got {
				switch e.(type) {
				case events.InventoryReserved:
					reserved++
				case events.InventoryReservationFailed:
					failed++
				case events.InventoryCommitted:
					committedN++
				case events.InventoryReleased:
					releasedN++
				}
			}
			if _, restock := cmd.(inventory.Restock); !restock && !reflect.DeepEqual(next, s) {
				if again, err := d.Decide(next, cmd); err != nil || again != nil {
					t.Fatalf("run %d: repeating %#v gave %#v, %v", run, cmd, again, err)
				}
			}
			s = next
			log = append(log, got...)
			checkInvariants(t, s)
		}
		if folded := d.Fold(d.Initial(sku), log); !reflect.DeepEqual(folded, s) {
			t.Fatalf("run %d: folding the log gives\n%+v\nwant\n%+v", run, folded, s)
		}
		if stored := aggregatetest.ViaJSON(t, reg, log); !reflect.DeepEqual(d.Fold(d.Initial(sku), stored), s) {
			t.Fatalf("run %d: the log does not survive encoding", run)
		}
	}
	for name, n := range map[string]int{"reserved": reserved, "failed": failed, "committed": committedN, "released": releasedN, "below reserved": refusedBelow} {
		if n == 0 {
			t.Errorf("random histories never produced %s", name)
		}
	}
}

func checkInvariants(t *testing.T, s inventory.State) {
	t.Helper()
	if s.Reserved < 0 || s.OnHand < s.Reserved {
		t.Fatalf("on hand %d, reserved %d", s.OnHand, s.Reserved)
	}
	var held, sold int64
	for o, q := range s.Reservations.All() {
		held += q
		if q <= 0 {
			t.Fatalf("order %s holds %d", o, q)
		}
		if s.Committed.Has(o) {
			t.Fatalf("order %s both holds and committed a reservation", o)
		}
		if s.Released.Has(o) {
			t.Fatalf("order %s both holds and released a reservation", o)
		}
	}
	for _, q := range s.Committed.All() {
		sold += q
	}
	if held != s.Reserved || sold != s.Sold {
		t.Fatalf("reserved %d, sold %d; maps say %d, %d", s.Reserved, s.Sold, held, sold)
	}
}
