package events

// Customer is who placed an order, as given at checkout.
type Customer struct {
	Name  string `json:"name"`
	Email string `json:"email"`
	Phone string `json:"phone,omitempty"`
}

// Address is a postal address. Name is the recipient when it differs from
// the customer; Line2, Region and PostalCode are optional because not
// every country uses them.
type Address struct {
	Name       string `json:"name,omitempty"`
	Line1      string `json:"line1"`
	Line2      string `json:"line2,omitempty"`
	City       string `json:"city"`
	Region     string `json:"region,omitempty"`
	PostalCode string `json:"postal_code,omitempty"`
	Country    string `json:"country"`
}

// OrderLine is one SKU of an order. UnitPrice is the catalog price when
// the order was placed and Amount is Qty × UnitPrice.
type OrderLine struct {
	SKU       string `json:"sku"`
	Qty       int64  `json:"qty"`
	UnitPrice Money  `json:"unit_price"`
	Amount    Money  `json:"amount"`
}

// OrderPlaced ("order.placed") starts an order. IdempotencyKey and
// RequestHash identify the request that placed it, so a retry of the same
// request is recognised and a reused key with another body is refused.
type OrderPlaced struct {
	OrderID         string      `json:"order_id"`
	CustomerID      string      `json:"customer_id"`
	Customer        Customer    `json:"customer"`
	Lines           []OrderLine `json:"lines"`
	Total           Money       `json:"total"`
	ShippingAddress Address     `json:"shipping_address"`
	IdempotencyKey  string      `json:"idempotency_key"`
	RequestHash     string      `json:"request_hash"`
}

// EventType returns "order.placed".
func (OrderPlaced) EventType() string { return "order.placed" }

// OrderStockReserved ("order.stock_reserved") records that every line's
// stock is reserved.
type OrderStockReserved struct {
	OrderID string `json:"order_id"`
}

// EventType returns "order.stock_reserved".
func (OrderStockReserved) EventType() string { return "order.stock_reserved" }

// OrderPaymentRequested ("order.payment_requested") records the payment
// the order waits for and where the shopper pays it.
type OrderPaymentRequested struct {
	OrderID     string `json:"order_id"`
	PaymentID   string `json:"payment_id"`
	Amount      Money  `json:"amount"`
	CheckoutURL string `json:"checkout_url"`
}

// EventType returns "order.payment_requested".
func (OrderPaymentRequested) EventType() string { return "order.payment_requested" }

// OrderPaid ("order.paid") records that the order's payment was captured.
type OrderPaid struct {
	OrderID   string `json:"order_id"`
	PaymentID string `json:"payment_id"`
	Amount    Money  `json:"amount"`
}

// EventType returns "order.paid".
func (OrderPaid) EventType() string { return "order.paid" }

// OrderShipped ("order.shipped") records the hand-over to a carrier.
type OrderShipped struct {
	OrderID        string `json:"order_id"`
	Carrier        string `json:"carrier"`
	TrackingNumber string `json:"tracking_number"`
}

// EventType returns "order.shipped".
func (OrderShipped) EventType() string { return "order.shipped" }

// OrderDelivered ("order.delivered") records the delivery.
type OrderDelivered struct {
	OrderID string `json:"order_id"`
}

// EventType returns "order.delivered".
func (OrderDelivered) EventType() string { return "order.delivered" }

// OrderRejected ("order.rejected") ends an order that could not be
// fulfilled; ShortSKUs lists the SKUs that lacked stock.
type OrderRejected struct {
	OrderID   string   `json:"order_id"`
	Reason    string   `json:"reason"`
	ShortSKUs []string `json:"short_skus,omitempty"`
}

// EventType returns "order.rejected".
func (OrderRejected) EventType() string { return "order.rejected" }

// OrderCancelled ("order.cancelled") ends an order before shipment.
// CancelledBy says who cancelled it (the customer, the payment timeout, a
// failed payment); WasPaid is true when the order had been paid, so a
// refund must follow.
type OrderCancelled struct {
	OrderID     string `json:"order_id"`
	Reason      string `json:"reason"`
	CancelledBy string `json:"cancelled_by"`
	WasPaid     bool   `json:"was_paid"`
}

// EventType returns "order.cancelled".
func (OrderCancelled) EventType() string { return "order.cancelled" }

// OrderRefunded ("order.refunded") records that the order's payment was
// refunded: a cancelled order's, or one the payment provider reports
// refunded before the order shipped (the order then ends and its stock
// goes back).
type OrderRefunded struct {
	OrderID   string `json:"order_id"`
	PaymentID string `json:"payment_id"`
	Amount    Money  `json:"amount"`
}

// EventType returns "order.refunded".
func (OrderRefunded) EventType() string { return "order.refunded" }

// Reasons of [OrderAttentionRequired].
const (
	// AttentionRefundedAfterShipment: the payment provider reported the
	// payment of a shipped or delivered order refunded. The goods are
	// gone and the money is back with the customer: customer service
	// decides (recover the goods, charge again, write it off).
	AttentionRefundedAfterShipment = "payment_refunded_after_shipment"
)

// OrderAttentionRequired ("order.attention_required") opens a task for
// customer service on an order whose status it does not change: something
// happened that Ordo cannot settle by itself. Reason is a code (such as
// [AttentionRefundedAfterShipment]); PaymentID and Amount name the money
// concerned, when there is any.
type OrderAttentionRequired struct {
	OrderID   string `json:"order_id"`
	Reason    string `json:"reason"`
	PaymentID string `json:"payment_id,omitempty"`
	Amount    Money  `json:"amount"`
}

// EventType returns "order.attention_required".
func (OrderAttentionRequired) EventType() string { return "order.attention_required" }
