package inventory

import "github.com/ordo-shop/ordo/aggregates"

// Errors returned by [Decide]. Each is a sentinel: Decide returns a copy
// with details, matched with errors.Is.
var (
	// ErrSKUNotFound: a command other than Define names a SKU that does
	// not exist.
	ErrSKUNotFound = aggregates.NewError(aggregates.KindNotFound, "sku_not_found", "SKU not found")
	// ErrInvalidSKU: the SKU id is empty.
	ErrInvalidSKU = aggregates.NewError(aggregates.KindInvalid, "invalid_sku", "invalid SKU")
	// ErrInvalidName: a name is empty or longer than [MaxNameLength].
	ErrInvalidName = aggregates.NewError(aggregates.KindInvalid, "invalid_name", "invalid SKU name")
	// ErrInvalidPrice: a price is negative.
	ErrInvalidPrice = aggregates.NewError(aggregates.KindInvalid, "invalid_price", "invalid price")
	// ErrInvalidCurrency: a currency is not three upper-case letters.
	ErrInvalidCurrency = aggregates.NewError(aggregates.KindInvalid, "invalid_currency", "invalid currency")
	// ErrInvalidQuantity: a count is negative, a quantity is not
	// positive, or a result would overflow.
	ErrInvalidQuantity = aggregates.NewError(aggregates.KindInvalid, "invalid_quantity", "invalid quantity")
	// ErrInvalidCommand: a command lacks its order id.
	ErrInvalidCommand = aggregates.NewError(aggregates.KindInvalid, "invalid_command", "invalid inventory command")
	// ErrBelowReserved: Define sets the on-hand count below the units
	// reserved.
	ErrBelowReserved = aggregates.NewError(aggregates.KindRule, "stock_below_reserved", "on-hand stock cannot go below reserved stock")
	// ErrCurrencyLocked: Define changes the price's currency while
	// reservations are open.
	ErrCurrencyLocked = aggregates.NewError(aggregates.KindRule, "currency_locked", "price currency cannot change while reservations are open")
	// ErrNoReservation: Commit for an order that holds no reservation.
	ErrNoReservation = aggregates.NewError(aggregates.KindRule, "no_reservation", "order holds no reservation")
)
