package inventory

import "github.com/ordo-shop/ordo/events"

// Evolve returns the state after event e. It ignores events that are not
// inventory events. s is not modified: its Ledgers are immutable.
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
		s.Reservations = s.Reservations.Set(e.OrderID, e.Qty)
	case events.InventoryReservationFailed:
		// Nothing is held; the event is for the checkout process manager.
	case events.InventoryReleased:
		s.Reserved -= e.Qty
		s.Reservations = s.Reservations.Delete(e.OrderID)
		s.Released = s.Released.Set(e.OrderID, e.Qty)
	case events.InventoryCommitted:
		s.OnHand -= e.Qty
		s.Reserved -= e.Qty
		s.Sold += e.Qty
		s.Reservations = s.Reservations.Delete(e.OrderID)
		s.Committed = s.Committed.Set(e.OrderID, e.Qty)
	}
	return s
}
