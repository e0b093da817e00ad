package events

import (
	"encoding/json"
	"errors"
	"fmt"
)

// Standard returns a new [Registry] holding every Ordo event payload type
// at its current schema version, and the upcasters from older versions:
//
//   - inventory.priced v1 → v2: the price moved from a decimal number in
//     major units with a separate currency field to a [Money] in minor
//     units (see [ParseMoney]).
//
// Each call builds a fresh registry; callers may add their own types to
// it. The list is static, so an error means a programming mistake in this
// file; it is returned rather than panicked on.
func Standard() (*Registry, error) {
	r := NewRegistry()
	err := errors.Join(
		// order
		Register[OrderPlaced](r, 1),
		Register[OrderStockReserved](r, 1),
		Register[OrderPaymentRequested](r, 1),
		Register[OrderPaid](r, 1),
		Register[OrderShipped](r, 1),
		Register[OrderDelivered](r, 1),
		Register[OrderRejected](r, 1),
		Register[OrderCancelled](r, 1),
		Register[OrderRefunded](r, 1),
		Register[OrderAttentionRequired](r, 1),
		// inventory
		Register[InventoryPriced](r, InventoryPricedVersion),
		r.RegisterUpcaster(InventoryPriced{}.EventType(), 1, upcastInventoryPricedV1),
		Register[InventoryStockAdjusted](r, 1),
		Register[InventoryRestocked](r, 1),
		Register[InventoryReserved](r, 1),
		Register[InventoryReservationFailed](r, 1),
		Register[InventoryReleased](r, 1),
		Register[InventoryCommitted](r, 1),
		// payment
		Register[PaymentRequested](r, 1),
		Register[PaymentAuthorized](r, 1),
		Register[PaymentCaptured](r, 1),
		Register[PaymentFailed](r, 1),
		Register[PaymentVoided](r, 1),
		Register[PaymentRefunded](r, 1),
	)
	if err != nil {
		return nil, fmt.Errorf("standard registry: %w", err)
	}
	return r, nil
}

// upcastInventoryPricedV1 turns inventory.priced v1 data,
//
//	{"sku":"TEA-250","name":"Oolong","price":19.99,"currency":"CNY"}
//
// into v2 data,
//
//	{"sku":"TEA-250","name":"Oolong","price":{"amount":1999,"currency":"CNY"}}
//
// reading the price from its JSON text so no float rounding can creep in.
func upcastInventoryPricedV1(data json.RawMessage) (json.RawMessage, error) {
	var v1 struct {
		SKU      string       `json:"sku"`
		Name     string       `json:"name"`
		Price    *json.Number `json:"price"`
		Currency string       `json:"currency"`
	}
	if err := json.Unmarshal(data, &v1); err != nil {
		return nil, fmt.Errorf("inventory.priced v1: %w", err)
	}
	if v1.Price == nil {
		return nil, errors.New("inventory.priced v1: price is missing")
	}
	price, err := ParseMoney(v1.Price.String(), v1.Currency)
	if err != nil {
		return nil, fmt.Errorf("inventory.priced v1 %s: %w", v1.SKU, err)
	}
	out, err := json.Marshal(InventoryPriced{SKU: v1.SKU, Name: v1.Name, Price: price})
	if err != nil {
		return nil, fmt.Errorf("inventory.priced v1 %s: %w", v1.SKU, err)
	}
	return out, nil
}
