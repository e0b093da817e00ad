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
	ID          string       `json:"id"`
	Exists      bool         `json:"exists"`
	OrderID     string       `json:"order_id"`
	Amount      events.Money `json:"amount"`
	Status      Status       `json:"status"`
	Provider    string       `json:"provider"`
	IntentID    string       `json:"intent_id"`
	CheckoutURL string       `json:"checkout_url"`
	// ProviderRef is the provider's reference for the capture.
	ProviderRef string `json:"provider_ref"`
	// FailReason says why the provider declined the payment.
	FailReason string `json:"fail_reason"`
}

// Initial returns the state of the payment id before it exists.
func Initial(id string) State {
	return State{ID: id}
}
