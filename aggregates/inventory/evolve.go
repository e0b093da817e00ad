package inventory

import (
	"maps"

	"github.com/ordo-shop/ordo/events"
)

// Evolve returns the state after event e. It ignores events that are not
// inventory events. s is not modified: maps are copied before a write.
func Evolve(s State, e events.Payload) State {
	switch e := e.(type) {
	case events.InventoryPriced:
		s.SKU = e.SKU
		s.Exists = true
		s.Name = e.Name
		s.Price = e.Price
	case events.InventoryStockAdjusted:
		s.OnHand = e.OnHand
	case events.InventoryRestocked:
		s.OnHand = e.OnHand
	case events.InventoryReserved:
		s.Reserved += e.Qty
		s.Reservations = with(s.Reservations, e.OrderID, e.Qty)
	case events.InventoryReservationFailed:
		// Nothing is held; the event is for the checkout process manager.
	case events.InventoryReleased:
		s.Reserved -= e.Qty
		s.Reservations = without(s.Reservations, e.OrderID)
		s.Released = with(s.Released, e.OrderID, e.Qty)
	case events.InventoryCommitted:
		s.OnHand -= e.Qty
		s.Reserved -= e.Qty
		s.Sold += e.Qty
		s.Reservations = without(s.Reservations, e.OrderID)
		s.Committed = with(s.Committed, e.OrderID, e.Qty)
	}
	return s
}

// with returns a copy of m with k set to v.
func with(m map[string]int64, k string, v int64) map[string]int64 {
	out := make(map[string]int64, len(m)+1)
	maps.Copy(out, m)
	out[k] = v
	return out
}

// without returns a copy of m without k.
func without(m map[string]int64, k string) map[string]int64 {
	out := maps.Clone(m)
	delete(out, k)
	return out
}
