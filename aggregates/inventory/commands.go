package inventory

import "github.com/ordo-shop/ordo/events"

// Command is a request to change a SKU: one of [Define], [Restock],
// [Reserve], [Release] and [Commit]. The set is closed: other packages
// cannot add commands. Pass commands as values, not pointers.
type Command interface {
	// commandName names the command in error messages; it also seals
	// the interface.
	commandName() string
}

// MaxNameLength is the longest SKU name, in characters: a line of text
// ([events.LineText]).
const MaxNameLength = events.MaxLineRunes

// Define creates a SKU or updates it (PUT /v1/skus/{sku}): it sets the
// name, the price and the absolute on-hand count. Only what differs from
// the current state is recorded: an [events.InventoryPriced] when the name
// or price changes (always on creation) and an
// [events.InventoryStockAdjusted] with the signed difference when the
// count changes.
type Define struct {
	Name   string
	Price  events.Money
	OnHand int64
}

// Restock adds received units to the on-hand count.
type Restock struct {
	Qty int64
}

// Reserve holds Qty units for an order. If fewer are available it
// records an [events.InventoryReservationFailed] instead. An order reserves
// a SKU once: Reserve for an order that holds, committed or released a
// reservation produces nothing.
type Reserve struct {
	OrderID string
	Qty     int64
}

// Release gives back what an order has reserved, if anything.
type Release struct {
	OrderID string
}

// Commit turns an order's reservation into sold units when it ships.
type Commit struct {
	OrderID string
}

func (Define) commandName() string  { return "define" }
func (Restock) commandName() string { return "restock" }
func (Reserve) commandName() string { return "reserve" }
func (Release) commandName() string { return "release" }
func (Commit) commandName() string  { return "commit" }
