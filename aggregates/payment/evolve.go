package payment

import "github.com/ordo-shop/ordo/events"

// Evolve returns the state after event e. It ignores events that are not
// payment events.
func Evolve(s State, e events.Payload) State {
	switch e := e.(type) {
	case events.PaymentRequested:
		s.ID = e.PaymentID
		s.Exists = true
		s.OrderID = e.OrderID
		s.Amount = e.Amount
		s.Status = StatusRequested
		s.Provider = e.Provider
		s.IntentID = e.IntentID
		s.CheckoutURL = e.CheckoutURL
	case events.PaymentAuthorized:
		s.Status = StatusAuthorized
	case events.PaymentCaptured:
		s.Status = StatusCaptured
		s.ProviderRef = e.ProviderRef
	case events.PaymentFailed:
		s.Status = StatusFailed
		s.FailReason = e.Reason
	case events.PaymentVoided:
		s.Status = StatusVoided
	case events.PaymentRefunded:
		s.Status = StatusRefunded
	}
	return s
}
