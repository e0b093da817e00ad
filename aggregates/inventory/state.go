package inventory

import "github.com/ordo-shop/ordo/events"

// AggregateType is the inventory aggregate's type name in the log.
const AggregateType = "inventory"

// State is one SKU as its events left it. The zero State with a SKU is a
// SKU that does not exist yet (Exists is false).
//
// The maps are shared with copies of the State and replaced, never
// written, by [Evolve]: treat them as read-only.
type State struct {
	SKU    string       `json:"sku"`
	Exists bool         `json:"exists"`
	Name   string       `json:"name"`
	Price  events.Money `json:"price"`
	// OnHand counts the units in the warehouse, reserved ones included.
	OnHand int64 `json:"on_hand"`
	// Reserved counts the units held for orders that have not shipped.
	Reserved int64 `json:"reserved"`
	// Sold counts the units committed to shipped orders.
	Sold int64 `json:"sold"`
	// Reservations maps an order id to the units reserved for it.
	Reservations Ledger `json:"reservations"`
	// Committed maps an order id to the units it took when it shipped.
	Committed Ledger `json:"committed"`
	// Released maps an order id to the units it gave back. An order whose
	// reservation was released never reserves again: its Reserve can only
	// be a late duplicate.
	Released Ledger `json:"released"`
}

// Available returns the units that can still be reserved.
func (s State) Available() int64 {
	return s.OnHand - s.Reserved
}

// Initial returns the state of sku before it exists.
func Initial(sku string) State {
	return State{SKU: sku}
}
