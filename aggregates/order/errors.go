package order

import "github.com/ordo-shop/ordo/aggregates"

// Errors returned by [Decide]. Each is a sentinel: Decide returns a copy
// with details, matched with errors.Is.
var (
	// ErrOrderNotFound: a command other than Place names an order that
	// does not exist.
	ErrOrderNotFound = aggregates.NewError(aggregates.KindNotFound, "order_not_found", "order not found")
	// ErrInvalidOrder: a Place command is malformed (missing order or
	// customer id, no lines, a line without SKU, a line amount that is
	// not qty × unit price).
	ErrInvalidOrder = aggregates.NewError(aggregates.KindInvalid, "invalid_order", "invalid order")
	// ErrInvalidQuantity: a line quantity is not in 1..[MaxLineQty].
	ErrInvalidQuantity = aggregates.NewError(aggregates.KindInvalid, "invalid_quantity", "invalid quantity")
	// ErrInvalidPrice: a unit price is negative or has no valid currency.
	ErrInvalidPrice = aggregates.NewError(aggregates.KindInvalid, "invalid_price", "invalid price")
	// ErrMixedCurrency: the lines are priced in more than one currency.
	ErrMixedCurrency = aggregates.NewError(aggregates.KindInvalid, "mixed_currency", "order lines use more than one currency")
	// ErrTooManyLines: an order has more than [MaxLines] lines.
	ErrTooManyLines = aggregates.NewError(aggregates.KindInvalid, "too_many_lines", "too many order lines")
	// ErrDuplicateSKU: a SKU appears on more than one line.
	ErrDuplicateSKU = aggregates.NewError(aggregates.KindInvalid, "duplicate_sku", "a SKU appears on more than one line")
	// ErrAmountOverflow: a line amount or the total does not fit an int64.
	ErrAmountOverflow = aggregates.NewError(aggregates.KindInvalid, "amount_overflow", "order amount too large")
	// ErrInvalidCommand: a command other than Place lacks a required
	// field (a payment id, a carrier or tracking number).
	ErrInvalidCommand = aggregates.NewError(aggregates.KindInvalid, "invalid_command", "invalid order command")
	// ErrIdempotencyKeyReused: Place names an existing order with a
	// different request body.
	ErrIdempotencyKeyReused = aggregates.NewError(aggregates.KindRule, "idempotency_key_reused", "idempotency key reused with a different request")
	// ErrAmountMismatch: a payment amount differs from the order total.
	ErrAmountMismatch = aggregates.NewError(aggregates.KindRule, "amount_mismatch", "amount does not match the order total")
	// ErrPaymentMismatch: a payment id differs from the order's payment.
	ErrPaymentMismatch = aggregates.NewError(aggregates.KindRule, "payment_mismatch", "payment does not match the order's payment")
	// ErrAlreadyShipped: cancel an order that has shipped, or ship one
	// that has shipped with another carrier or tracking number.
	ErrAlreadyShipped = aggregates.NewError(aggregates.KindRule, "order_already_shipped", "order already shipped")
	// ErrNotCancellable: cancel a rejected order. (Cancelling a
	// cancelled or refunded order is a no-op, not an error.)
	ErrNotCancellable = aggregates.NewError(aggregates.KindRule, "order_not_cancellable", "order cannot be cancelled")
	// ErrNotShippable: ship an order that is not paid.
	ErrNotShippable = aggregates.NewError(aggregates.KindRule, "order_not_shippable", "order cannot be shipped")
	// ErrInvalidTransition: any other command the state machine does not
	// allow from the order's status.
	ErrInvalidTransition = aggregates.NewError(aggregates.KindRule, "invalid_transition", "invalid order transition")
)
