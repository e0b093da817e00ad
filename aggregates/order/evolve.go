package order

import (
	"slices"

	"github.com/ordo-shop/ordo/events"
)

// Evolve returns the state after event e. It ignores events that are not
// order events. s is not modified: the result shares nothing with e.
func Evolve(s State, e events.Payload) State {
	switch e := e.(type) {
	case events.OrderPlaced:
		s.ID = e.OrderID
		s.Exists = true
		s.CustomerID = e.CustomerID
		s.Customer = e.Customer
		s.Lines = slices.Clone(e.Lines)
		s.Total = e.Total
		s.ShippingAddress = e.ShippingAddress
		s.Status = StatusPlaced
		s.IdempotencyKey = e.IdempotencyKey
		s.RequestHash = e.RequestHash
	case events.OrderStockReserved:
		s.Status = StatusStockReserved
	case events.OrderPaymentRequested:
		s.Status = StatusPaymentPending
		s.PaymentID = e.PaymentID
		s.CheckoutURL = e.CheckoutURL
	case events.OrderPaid:
		s.Status = StatusPaid
		s.Paid = true
		s.PaymentID = e.PaymentID
	case events.OrderShipped:
		s.Status = StatusShipped
		s.Carrier = e.Carrier
		s.TrackingNumber = e.TrackingNumber
	case events.OrderDelivered:
		s.Status = StatusDelivered
	case events.OrderRejected:
		s.Status = StatusRejected
		s.RejectReason = e.Reason
	case events.OrderCancelled:
		s.Status = StatusCancelled
		s.CancelReason = e.Reason
		s.CancelledBy = e.CancelledBy
	case events.OrderRefunded:
		s.Status = StatusRefunded
		s.Refunded = true
		if s.PaymentID == "" {
			s.PaymentID = e.PaymentID
		}
	case events.OrderAttentionRequired:
		s.Attention = e.Reason
		if e.Reason == events.AttentionRefundedAfterShipment {
			s.Refunded = true
		}
	}
	return s
}
