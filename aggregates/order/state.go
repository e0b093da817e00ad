package order

import "github.com/ordo-shop/ordo/events"

// AggregateType is the order aggregate's type name in the log.
const AggregateType = "order"

// Status is where an order is in its life.
type Status string

// The order statuses.
const (
	StatusPlaced         Status = "placed"
	StatusStockReserved  Status = "stock_reserved"
	StatusPaymentPending Status = "payment_pending"
	StatusPaid           Status = "paid"
	StatusShipped        Status = "shipped"
	StatusDelivered      Status = "delivered"
	StatusRejected       Status = "rejected"
	StatusCancelled      Status = "cancelled"
	StatusRefunded       Status = "refunded"
)

// State is an order as its events left it. The zero State with an ID is
// an order that does not exist yet (Exists is false).
//
// Lines is shared with the event that set it and with copies of the
// State: treat it as read-only.
type State struct {
	ID              string             `json:"id"`
	Exists          bool               `json:"exists"`
	CustomerID      string             `json:"customer_id"`
	Customer        events.Customer    `json:"customer"`
	Lines           []events.OrderLine `json:"lines"`
	Total           events.Money       `json:"total"`
	ShippingAddress events.Address     `json:"shipping_address"`
	Status          Status             `json:"status"`
	// PaymentID and CheckoutURL name the payment the order waits for or
	// was paid with.
	PaymentID   string `json:"payment_id"`
	CheckoutURL string `json:"checkout_url"`
	// Paid is true once the order was paid; it stays true after a
	// cancellation, so a refund is known to be owed.
	Paid bool `json:"paid"`
	// Refunded is true once the order's payment was paid back: the order
	// is refunded, or it had shipped and customer service has the case.
	Refunded bool `json:"refunded"`
	// Attention is the reason of the last customer-service task opened
	// on the order (order.attention_required), "" if none.
	Attention      string `json:"attention,omitempty"`
	Carrier        string `json:"carrier"`
	TrackingNumber string `json:"tracking_number"`
	CancelReason   string `json:"cancel_reason"`
	CancelledBy    string `json:"cancelled_by"`
	RejectReason   string `json:"reject_reason"`
	// IdempotencyKey and RequestHash identify the request that placed the
	// order.
	IdempotencyKey string `json:"idempotency_key"`
	RequestHash    string `json:"request_hash"`
}

// Initial returns the state of the order id before it exists.
func Initial(id string) State {
	return State{ID: id}
}
