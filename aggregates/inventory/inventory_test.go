package inventory_test

import (
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/ordo-shop/ordo/aggregates/aggregatetest"
	"github.com/ordo-shop/ordo/aggregates/inventory"
	"github.com/ordo-shop/ordo/events"
)

const sku = "TEA-250"

func cny(a int64) events.Money { return events.Money{Amount: a, Currency: "CNY"} }

var (
	priced    = events.InventoryPriced{SKU: sku, Name: "Oolong", Price: cny(1999)}
	stocked   = events.InventoryStockAdjusted{SKU: sku, Delta: 10, OnHand: 10}
	defined   = []events.Payload{priced, stocked}
	reserved1 = events.InventoryReserved{SKU: sku, OrderID: "o-1", Qty: 3}
	holding   = []events.Payload{priced, stocked, reserved1} // o-1 holds 3 of 10
	released1 = events.InventoryReleased{SKU: sku, OrderID: "o-1", Qty: 3}
	released  = []events.Payload{priced, stocked, reserved1, released1}
	committed = []events.Payload{priced, stocked, reserved1, events.InventoryCommitted{SKU: sku, OrderID: "o-1", Qty: 3}}
	define    = inventory.Define{Name: "Oolong", Price: cny(1999), OnHand: 10}
)

func given(evs ...events.Payload) inventory.State {
	return inventory.Decider().Fold(inventory.Initial(sku), evs)
}

func evs(e ...events.Payload) []events.Payload { return e }

func with(d inventory.Define, f func(*inventory.Define)) inventory.Define {
	f(&d)
	return d
}

func check(t *testing.T, s inventory.State, when inventory.Command, then []events.Payload, wantErr error) {
	t.Helper()
	aggregatetest.Check(t, inventory.Decide, s, when, then, wantErr)
}

// TestCommands covers every command from every kind of SKU state: each
// allowed change, each no-op and each refusal.
func TestCommands(t *testing.T) {
	tests := []struct {
		name  string
		given []events.Payload
		when  inventory.Command
		then  []events.Payload
		err   error
	}{
		// Define: create.
		{"define new", nil, define, evs(priced, stocked), nil},
		{"define new without stock", nil, with(define, func(d *inventory.Define) { d.OnHand = 0 }), evs(priced), nil},
		{"define new for free", nil, with(define, func(d *inventory.Define) { d.Price = cny(0); d.OnHand = 0 }),
			evs(events.InventoryPriced{SKU: sku, Name: "Oolong", Price: cny(0)}), nil},
		// Define: update.
		{"define unchanged", defined, define, nil, nil},
		{"define renamed", defined, with(define, func(d *inventory.Define) { d.Name = "Oolong 250g" }),
			evs(events.InventoryPriced{SKU: sku, Name: "Oolong 250g", Price: cny(1999)}), nil},
		{"define repriced", defined, with(define, func(d *inventory.Define) { d.Price = cny(2499) }),
			evs(events.InventoryPriced{SKU: sku, Name: "Oolong", Price: cny(2499)}), nil},
		{"define new currency", defined, with(define, func(d *inventory.Define) { d.Price = events.Money{Amount: 299, Currency: "EUR"} }),
			evs(events.InventoryPriced{SKU: sku, Name: "Oolong", Price: events.Money{Amount: 299, Currency: "EUR"}}), nil},
		{"define less stock", defined, with(define, func(d *inventory.Define) { d.OnHand = 7 }),
			evs(events.InventoryStockAdjusted{SKU: sku, Delta: -3, OnHand: 7}), nil},
		{"define no stock", defined, with(define, func(d *inventory.Define) { d.OnHand = 0 }),
			evs(events.InventoryStockAdjusted{SKU: sku, Delta: -10, OnHand: 0}), nil},
		{"define renamed and more stock", defined, with(define, func(d *inventory.Define) { d.Name = "Tea"; d.OnHand = 12 }),
			evs(events.InventoryPriced{SKU: sku, Name: "Tea", Price: cny(1999)}, events.InventoryStockAdjusted{SKU: sku, Delta: 2, OnHand: 12}), nil},
		{"define stock down to reserved", holding, with(define, func(d *inventory.Define) { d.OnHand = 3 }),
			evs(events.InventoryStockAdjusted{SKU: sku, Delta: -7, OnHand: 3}), nil},
		{"define repriced while reserved", holding, with(define, func(d *inventory.Define) { d.Price = cny(2999) }),
			evs(events.InventoryPriced{SKU: sku, Name: "Oolong", Price: cny(2999)}), nil},
		{"define new currency after the reservation shipped", committed, with(define, func(d *inventory.Define) { d.Price = events.Money{Amount: 299, Currency: "EUR"}; d.OnHand = 7 }),
			evs(events.InventoryPriced{SKU: sku, Name: "Oolong", Price: events.Money{Amount: 299, Currency: "EUR"}}), nil},
		// Define: refused.
		{"define stock below reserved", holding, with(define, func(d *inventory.Define) { d.OnHand = 2 }), nil, inventory.ErrBelowReserved},
		{"define negative stock", defined, with(define, func(d *inventory.Define) { d.OnHand = -1 }), nil, inventory.ErrInvalidQuantity},
		{"define negative stock on a new SKU", nil, with(define, func(d *inventory.Define) { d.OnHand = -1 }), nil, inventory.ErrInvalidQuantity},
		{"define without name", nil, with(define, func(d *inventory.Define) { d.Name = "" }), nil, inventory.ErrInvalidName},
		{"define name too long", defined, with(define, func(d *inventory.Define) { d.Name = strings.Repeat("x", inventory.MaxNameLength+1) }), nil, inventory.ErrInvalidName},
		{"define negative price", nil, with(define, func(d *inventory.Define) { d.Price = cny(-1) }), nil, inventory.ErrInvalidPrice},
		{"define without currency", nil, with(define, func(d *inventory.Define) { d.Price.Currency = "" }), nil, inventory.ErrInvalidCurrency},
		{"define lower-case currency", nil, with(define, func(d *inventory.Define) { d.Price.Currency = "cny" }), nil, inventory.ErrInvalidCurrency},
		{"define four-letter currency", nil, with(define, func(d *inventory.Define) { d.Price.Currency = "CNYY" }), nil, inventory.ErrInvalidCurrency},
		{"define new currency while reserved", holding, with(define, func(d *inventory.Define) { d.Price = events.Money{Amount: 299, Currency: "EUR"} }), nil, inventory.ErrCurrencyLocked},

		// Restock.
		{"restock missing", nil, inventory.Restock{Qty: 5}, nil, inventory.ErrSKUNotFound},
		{"restock", defined, inventory.Restock{Qty: 5}, evs(events.InventoryRestocked{SKU: sku, Qty: 5, OnHand: 15}), nil},
		{"restock while reserved", holding, inventory.Restock{Qty: 1}, evs(events.InventoryRestocked{SKU: sku, Qty: 1, OnHand: 11}), nil},
		{"restock zero", defined, inventory.Restock{Qty: 0}, nil, inventory.ErrInvalidQuantity},
		{"restock negative", defined, inventory.Restock{Qty: -1}, nil, inventory.ErrInvalidQuantity},
		{"restock overflow", defined, inventory.Restock{Qty: math.MaxInt64 - 9}, nil, inventory.ErrInvalidQuantity},

		// Reserve.
		{"reserve missing", nil, inventory.Reserve{OrderID: "o-1", Qty: 1}, nil, inventory.ErrSKUNotFound},
		{"reserve", defined, inventory.Reserve{OrderID: "o-1", Qty: 3}, evs(reserved1), nil},
		{"reserve all", defined, inventory.Reserve{OrderID: "o-1", Qty: 10}, evs(events.InventoryReserved{SKU: sku, OrderID: "o-1", Qty: 10}), nil},
		{"reserve more than on hand", defined, inventory.Reserve{OrderID: "o-1", Qty: 11},
			evs(events.InventoryReservationFailed{SKU: sku, OrderID: "o-1", Requested: 11, Available: 10}), nil},
		{"reserve more than available", holding, inventory.Reserve{OrderID: "o-2", Qty: 8},
			evs(events.InventoryReservationFailed{SKU: sku, OrderID: "o-2", Requested: 8, Available: 7}), nil},
		{"reserve the rest", holding, inventory.Reserve{OrderID: "o-2", Qty: 7}, evs(events.InventoryReserved{SKU: sku, OrderID: "o-2", Qty: 7}), nil},
		{"reserve with no stock", evs(priced), inventory.Reserve{OrderID: "o-1", Qty: 1},
			evs(events.InventoryReservationFailed{SKU: sku, OrderID: "o-1", Requested: 1, Available: 0}), nil},
		{"reserve again", holding, inventory.Reserve{OrderID: "o-1", Qty: 3}, nil, nil},
		{"reserve again, other quantity", holding, inventory.Reserve{OrderID: "o-1", Qty: 5}, nil, nil},
		{"reserve after commit", committed, inventory.Reserve{OrderID: "o-1", Qty: 3}, nil, nil},
		{"reserve after release", released, inventory.Reserve{OrderID: "o-1", Qty: 3}, nil, nil},
		{"reserve zero", defined, inventory.Reserve{OrderID: "o-1", Qty: 0}, nil, inventory.ErrInvalidQuantity},
		{"reserve negative", defined, inventory.Reserve{OrderID: "o-1", Qty: -2}, nil, inventory.ErrInvalidQuantity},
		{"reserve without order", defined, inventory.Reserve{Qty: 1}, nil, inventory.ErrInvalidCommand},

		// Release.
		{"release missing", nil, inventory.Release{OrderID: "o-1"}, nil, inventory.ErrSKUNotFound},
		{"release", holding, inventory.Release{OrderID: "o-1"}, evs(released1), nil},
		{"release without reservation", defined, inventory.Release{OrderID: "o-1"}, nil, nil},
		{"release other order", holding, inventory.Release{OrderID: "o-2"}, nil, nil},
		{"release again", released, inventory.Release{OrderID: "o-1"}, nil, nil},
		{"release after commit", committed, inventory.Release{OrderID: "o-1"}, nil, nil},
		{"release without order", holding, inventory.Release{}, nil, inventory.ErrInvalidCommand},

		// Commit.
		{"commit missing", nil, inventory.Commit{OrderID: "o-1"}, nil, inventory.ErrSKUNotFound},
		{"commit", holding, inventory.Commit{OrderID: "o-1"}, evs(events.InventoryCommitted{SKU: sku, OrderID: "o-1", Qty: 3}), nil},
		{"commit again", committed, inventory.Commit{OrderID: "o-1"}, nil, nil},
		{"commit without reservation", defined, inventory.Commit{OrderID: "o-1"}, nil, inventory.ErrNoReservation},
		{"commit after release", released, inventory.Commit{OrderID: "o-1"}, nil, inventory.ErrNoReservation},
		{"commit without order", holding, inventory.Commit{}, nil, inventory.ErrInvalidCommand},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			check(t, given(tt.given...), tt.when, tt.then, tt.err)
		})
	}
}

func TestDefineNameLength(t *testing.T) {
	// The limit counts characters, not bytes.
	long := strings.Repeat("茶", inventory.MaxNameLength)
	check(t, given(), with(define, func(d *inventory.Define) { d.Name = long; d.OnHand = 0 }),
		evs(events.InventoryPriced{SKU: sku, Name: long, Price: cny(1999)}), nil)
}

func TestDefineNeedsSKU(t *testing.T) {
	check(t, inventory.State{}, define, nil, inventory.ErrInvalidSKU)
}

func TestUnknownCommands(t *testing.T) {
	for _, c := range []inventory.Command{nil, &inventory.Reserve{OrderID: "o-1", Qty: 1}, &inventory.Define{}} {
		check(t, given(defined...), c, nil, inventory.ErrInvalidCommand)
	}
}

func TestEvolve(t *testing.T) {
	tests := []struct {
		name  string
		given []events.Payload
		want  inventory.State
	}{
		{"missing", nil, inventory.State{SKU: sku}},
		{"priced", evs(priced), inventory.State{SKU: sku, Exists: true, Name: "Oolong", Price: cny(1999)}},
		{"stocked", defined, inventory.State{SKU: sku, Exists: true, Name: "Oolong", Price: cny(1999), OnHand: 10}},
		{"restocked", evs(priced, stocked, events.InventoryRestocked{SKU: sku, Qty: 5, OnHand: 15}),
			inventory.State{SKU: sku, Exists: true, Name: "Oolong", Price: cny(1999), OnHand: 15}},
		{"reserved", holding, inventory.State{SKU: sku, Exists: true, Name: "Oolong", Price: cny(1999), OnHand: 10, Reserved: 3,
			Reservations: inventory.NewLedger(map[string]int64{"o-1": 3})}},
		{"reservation failed", evs(priced, stocked, reserved1, events.InventoryReservationFailed{SKU: sku, OrderID: "o-2", Requested: 9, Available: 7}),
			inventory.State{SKU: sku, Exists: true, Name: "Oolong", Price: cny(1999), OnHand: 10, Reserved: 3,
				Reservations: inventory.NewLedger(map[string]int64{"o-1": 3})}},
		{"released", released, inventory.State{SKU: sku, Exists: true, Name: "Oolong", Price: cny(1999), OnHand: 10,
			Released: inventory.NewLedger(map[string]int64{"o-1": 3})}},
		{"committed", committed, inventory.State{SKU: sku, Exists: true, Name: "Oolong", Price: cny(1999), OnHand: 7, Sold: 3,
			Committed: inventory.NewLedger(map[string]int64{"o-1": 3})}},
		{"other aggregates' events", evs(priced, events.OrderPaid{OrderID: "o-1"}, events.PaymentFailed{PaymentID: "p-1"}),
			inventory.State{SKU: sku, Exists: true, Name: "Oolong", Price: cny(1999)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := given(tt.given...)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("state\n%+v\nwant\n%+v", got, tt.want)
			}
			if got.Available() != got.OnHand-got.Reserved {
				t.Errorf("Available = %d", got.Available())
			}
		})
	}
}

func TestEvolveLeavesItsInputAlone(t *testing.T) {
	s := given(priced, stocked, reserved1, events.InventoryReserved{SKU: sku, OrderID: "o-2", Qty: 2},
		events.InventoryReserved{SKU: sku, OrderID: "o-3", Qty: 1}, events.InventoryCommitted{SKU: sku, OrderID: "o-3", Qty: 1},
		events.InventoryReleased{SKU: sku, OrderID: "o-2", Qty: 2}, events.InventoryReserved{SKU: sku, OrderID: "o-4", Qty: 1})
	clone := func(s inventory.State) inventory.State {
		c := s
		c.Reservations = inventory.NewLedger(s.Reservations.Map())
		c.Committed = inventory.NewLedger(s.Committed.Map())
		c.Released = inventory.NewLedger(s.Released.Map())
		return c
	}
	before := clone(s)
	for _, e := range []events.Payload{
		events.InventoryReserved{SKU: sku, OrderID: "o-5", Qty: 1},
		events.InventoryReleased{SKU: sku, OrderID: "o-1", Qty: 3},
		events.InventoryCommitted{SKU: sku, OrderID: "o-1", Qty: 3},
		events.InventoryCommitted{SKU: sku, OrderID: "o-4", Qty: 1},
		events.InventoryReleased{SKU: sku, OrderID: "o-4", Qty: 1},
	} {
		after := inventory.Evolve(s, e)
		if !reflect.DeepEqual(s, before) {
			t.Fatalf("Evolve(%T) modified its input:\n%+v\nwas\n%+v", e, s, before)
		}
		if reflect.DeepEqual(after, s) {
			t.Fatalf("Evolve(%T) changed nothing", e)
		}
	}
}

func TestDecider(t *testing.T) {
	d := inventory.Decider()
	if d.Type != "inventory" || inventory.AggregateType != "inventory" {
		t.Errorf("Type = %q", d.Type)
	}
	if s := d.Initial(sku); s.SKU != sku || s.Exists {
		t.Errorf("Initial = %+v", s)
	}
}

// TestNameThatCannotBeStoredIsRefused: a SKU name with bad text is
// refused with ErrInvalidText naming the field (a name that is only too
// long keeps its ErrInvalidName).
func TestNameThatCannotBeStoredIsRefused(t *testing.T) {
	for what, v := range aggregatetest.BadText {
		if what == "too long" {
			continue
		}
		t.Run(what, func(t *testing.T) {
			aggregatetest.CheckTextRefused[inventory.State, inventory.Command](t, inventory.Decide, given(), with(define, func(d *inventory.Define) { d.Name = v }), "name")
		})
	}
}
