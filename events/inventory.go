package events

// InventoryPricedVersion is the current schema version of
// [InventoryPriced]. Version 1 stored the price as a decimal number in
// major units next to a separate currency field; [Standard] registers the
// upcaster from it.
const InventoryPricedVersion = 2

// InventoryPriced ("inventory.priced", schema version 2) sets a SKU's
// name and catalog price. The first one creates the SKU.
type InventoryPriced struct {
	SKU   string `json:"sku"`
	Name  string `json:"name"`
	Price Money  `json:"price"`
}

// EventType returns "inventory.priced".
func (InventoryPriced) EventType() string { return "inventory.priced" }

// InventoryStockAdjusted ("inventory.stock_adjusted") records an absolute
// on-hand count set by an operator: Delta is the signed difference from
// the previous count and OnHand the count after it.
type InventoryStockAdjusted struct {
	SKU    string `json:"sku"`
	Delta  int64  `json:"delta"`
	OnHand int64  `json:"on_hand"`
}

// EventType returns "inventory.stock_adjusted".
func (InventoryStockAdjusted) EventType() string { return "inventory.stock_adjusted" }

// InventoryRestocked ("inventory.restocked") records received stock: Qty
// units added, OnHand the count after it.
type InventoryRestocked struct {
	SKU    string `json:"sku"`
	Qty    int64  `json:"qty"`
	OnHand int64  `json:"on_hand"`
}

// EventType returns "inventory.restocked".
func (InventoryRestocked) EventType() string { return "inventory.restocked" }

// InventoryReserved ("inventory.reserved") holds Qty units for an order.
type InventoryReserved struct {
	SKU     string `json:"sku"`
	OrderID string `json:"order_id"`
	Qty     int64  `json:"qty"`
}

// EventType returns "inventory.reserved".
func (InventoryReserved) EventType() string { return "inventory.reserved" }

// InventoryReservationFailed ("inventory.reservation_failed") records that
// an order asked for more units than were available. It changes no stock;
// the checkout process manager reacts to it by rejecting the order.
type InventoryReservationFailed struct {
	SKU       string `json:"sku"`
	OrderID   string `json:"order_id"`
	Requested int64  `json:"requested"`
	Available int64  `json:"available"`
}

// EventType returns "inventory.reservation_failed".
func (InventoryReservationFailed) EventType() string { return "inventory.reservation_failed" }

// InventoryReleased ("inventory.released") gives an order's reserved
// units back.
type InventoryReleased struct {
	SKU     string `json:"sku"`
	OrderID string `json:"order_id"`
	Qty     int64  `json:"qty"`
}

// EventType returns "inventory.released".
func (InventoryReleased) EventType() string { return "inventory.released" }

// InventoryCommitted ("inventory.committed") turns an order's reserved
// units into sold ones when the order ships: they leave on-hand stock.
type InventoryCommitted struct {
	SKU     string `json:"sku"`
	OrderID string `json:"order_id"`
	Qty     int64  `json:"qty"`
}

// EventType returns "inventory.committed".
func (InventoryCommitted) EventType() string { return "inventory.committed" }
