package payment

import "github.com/ordo-shop/ordo/events"

// AggregateType is the payment aggregate's type name in the log.
const AggregateType = "payment"

// Status is where a payment is in its life.
type Status string

// The payment statuses.
const (
	StatusRequested  Status = "requested"
	StatusAuthorized Status = "authorized"
	StatusCaptured   Status = "captured"
	StatusFailed     Status = "failed"
	StatusVoided     Status = "voided"
	StatusRefunded   Status = "refunded"
)

// State is a payment as its events left it. The zero State with an ID is
// a payment that does not exist yet (Exists is false).
type State struct {
	ID          string
	Exists      bool
	OrderID     string
	Amount      events.Money
	Status      Status
	Provider    string
	IntentID    string
	CheckoutURL string
	// ProviderRef is the provider's reference for the capture.
	ProviderRef string
	// FailReason says why the provider declined the payment.
	FailReason string
}

// Initial returns the state of the payment id before it exists.
func Initial(id string) State {
	return State{ID: id}
}
