package order

import "github.com/ordo-shop/ordo/events"

// Command is a request to change an order: one of [Place],
// [MarkStockReserved], [RequestPayment], [MarkPaid], [Reject], [Cancel],
// [Ship], [Deliver] and [MarkRefunded]. The set is closed: other packages
// cannot add commands. Pass commands as values, not pointers.
type Command interface {
	// commandName names the command in error messages; it also seals
	// the interface.
	commandName() string
}

// Limits on a placed order.
const (
	// MaxLines is the most lines one order may have.
	MaxLines = 100
	// MaxLineQty is the largest quantity of one line.
	MaxLineQty = 10000
)

// Place creates the order. The caller fills each line's UnitPrice from the
// catalog (a client-sent price is never used); Amount may be left zero,
// since Decide computes Qty × UnitPrice and the total. Each SKU may appear
// on one line only. RequestHash fingerprints the request body: placing an
// existing order again with the same hash is a retry and produces nothing,
// with another hash it is refused with [ErrIdempotencyKeyReused].
type Place struct {
	OrderID         string
	CustomerID      string
	Customer        events.Customer
	Lines           []events.OrderLine
	ShippingAddress events.Address
	IdempotencyKey  string
	RequestHash     string
}

// MarkStockReserved records that every line's stock is reserved.
type MarkStockReserved struct{}

// RequestPayment records the payment the order now waits for. Amount must
// equal the order total.
type RequestPayment struct {
	PaymentID   string
	Amount      events.Money
	CheckoutURL string
}

// MarkPaid records that the requested payment was captured. PaymentID and
// Amount must match the requested payment.
type MarkPaid struct {
	PaymentID string
	Amount    events.Money
}

// Reject ends a placed order whose stock could not be reserved.
type Reject struct {
	Reason    string
	ShortSKUs []string
}

// Cancel ends an order that has not shipped. By says who cancelled it.
type Cancel struct {
	Reason string
	By     string
}

// Ship records the hand-over of a paid order to a carrier.
type Ship struct {
	Carrier        string
	TrackingNumber string
}

// Deliver records the delivery of a shipped order.
type Deliver struct{}

// MarkRefunded records that the order's payment was refunded: a cancelled
// order's (paid before it was cancelled, or captured after it), or one
// the payment provider refunded on its own. An order that has not shipped
// becomes refunded (the checkout then gives its stock back); a shipped or
// delivered one keeps its status and gets a customer-service task
// (order.attention_required).
type MarkRefunded struct {
	PaymentID string
	Amount    events.Money
}

func (Place) commandName() string             { return "place" }
func (MarkStockReserved) commandName() string { return "mark_stock_reserved" }
func (RequestPayment) commandName() string    { return "request_payment" }
func (MarkPaid) commandName() string          { return "mark_paid" }
func (Reject) commandName() string            { return "reject" }
func (Cancel) commandName() string            { return "cancel" }
func (Ship) commandName() string              { return "ship" }
func (Deliver) commandName() string           { return "deliver" }
func (MarkRefunded) commandName() string      { return "mark_refunded" }
