package payment

import (
	"github.com/ordo-shop/ordo/aggregates"
	"github.com/ordo-shop/ordo/events"
)

// Decider returns the payment aggregate as an [aggregates.Decider].
func Decider() aggregates.Decider[State, Command] {
	return aggregates.Decider[State, Command]{
		Type:    AggregateType,
		Initial: Initial,
		Decide:  Decide,
		Evolve:  Evolve,
	}
}

// Decide returns the events cmd produces from state s: none when the
// command's effect is already there, or a *[aggregates.DomainError] when
// it is refused.
func Decide(s State, cmd Command) ([]events.Payload, error) {
	switch c := cmd.(type) {
	case Request:
		return request(s, c)
	case Authorize, Capture, Fail, Void, Refund:
		if !s.Exists {
			return nil, ErrPaymentNotFound.With("%s: payment %q", c.commandName(), s.ID)
		}
	default:
		return nil, ErrInvalidCommand.With("unknown command %T", cmd)
	}
	switch c := cmd.(type) {
	case Authorize:
		return authorize(s, c)
	case Capture:
		return capture(s, c)
	case Fail:
		return fail(s, c)
	case Void:
		return void(s, c)
	case Refund:
		return refund(s, c)
	default:
		return nil, ErrInvalidCommand.With("unknown command %T", cmd)
	}
}

func request(s State, c Request) ([]events.Payload, error) {
	if s.Exists {
		if c.OrderID == s.OrderID && c.Amount == s.Amount {
			return nil, nil
		}
		return nil, ErrAlreadyRequested.With("payment %s is %s for order %s, not %s for order %s", s.ID, s.Amount, s.OrderID, c.Amount, c.OrderID)
	}
	if s.ID == "" {
		return nil, ErrInvalidCommand.With("request: payment id is empty")
	}
	if c.OrderID == "" {
		return nil, ErrInvalidCommand.With("request %s: order id is empty", s.ID)
	}
	if !events.ValidCurrency(c.Amount.Currency) || c.Amount.Amount < 0 {
		return nil, ErrInvalidAmount.With("request %s: %s", s.ID, c.Amount)
	}
	if err := aggregates.RefuseText(c.commandName(), events.CheckTexts(
		events.TextField{Name: "provider", Value: c.Provider, Rule: events.LineText},
		events.TextField{Name: "intent_id", Value: c.IntentID, Rule: events.LineText},
		events.TextField{Name: "checkout_url", Value: c.CheckoutURL, Rule: events.URLText},
	)); err != nil {
		return nil, err
	}
	return []events.Payload{events.PaymentRequested{
		PaymentID:   s.ID,
		OrderID:     c.OrderID,
		Amount:      c.Amount,
		Provider:    c.Provider,
		IntentID:    c.IntentID,
		CheckoutURL: c.CheckoutURL,
	}}, nil
}

func mismatch(s State, got events.Money) error {
	return ErrAmountMismatch.With("payment %s is %s, not %s", s.ID, s.Amount, got)
}

func authorize(s State, c Authorize) ([]events.Payload, error) {
	if s.Status == StatusFailed || s.Status == StatusVoided {
		return nil, ErrNotAuthorizable.With("payment %s is %s", s.ID, s.Status)
	}
	if c.Amount != s.Amount {
		return nil, mismatch(s, c.Amount)
	}
	if s.Status != StatusRequested {
		// A retry, or an authorization reported after the capture.
		return nil, nil
	}
	return []events.Payload{events.PaymentAuthorized{PaymentID: s.ID, Amount: c.Amount}}, nil
}

func capture(s State, c Capture) ([]events.Payload, error) {
	if err := aggregates.RefuseText(c.commandName(), events.CheckText("provider_ref", c.ProviderRef, events.LineText)); err != nil {
		return nil, err
	}
	if s.Status != StatusRequested && s.Status != StatusAuthorized && s.Status != StatusCaptured {
		return nil, ErrNotCapturable.With("payment %s is %s", s.ID, s.Status)
	}
	if c.Amount != s.Amount {
		return nil, mismatch(s, c.Amount)
	}
	if s.Status == StatusCaptured {
		return nil, nil
	}
	return []events.Payload{events.PaymentCaptured{PaymentID: s.ID, Amount: c.Amount, ProviderRef: c.ProviderRef}}, nil
}

func fail(s State, c Fail) ([]events.Payload, error) {
	if err := checkReason(c, c.Reason); err != nil {
		return nil, err
	}
	switch s.Status {
	case StatusRequested, StatusAuthorized:
		return []events.Payload{events.PaymentFailed{PaymentID: s.ID, Reason: c.Reason}}, nil
	case StatusFailed:
		return nil, nil
	case StatusCaptured, StatusRefunded:
		return nil, ErrAlreadyCaptured.With("payment %s is %s", s.ID, s.Status)
	default:
		return nil, ErrInvalidTransition.With("cannot fail a payment that is %s", s.Status)
	}
}

func void(s State, c Void) ([]events.Payload, error) {
	if err := checkReason(c, c.Reason); err != nil {
		return nil, err
	}
	switch s.Status {
	case StatusRequested, StatusAuthorized:
		return []events.Payload{events.PaymentVoided{PaymentID: s.ID, Reason: c.Reason}}, nil
	case StatusVoided:
		return nil, nil
	case StatusCaptured, StatusRefunded:
		return nil, ErrAlreadyCaptured.With("payment %s is %s", s.ID, s.Status)
	default:
		return nil, ErrInvalidTransition.With("cannot void a payment that is %s", s.Status)
	}
}

func refund(s State, c Refund) ([]events.Payload, error) {
	if err := checkReason(c, c.Reason); err != nil {
		return nil, err
	}
	switch s.Status {
	case StatusCaptured:
		if c.Amount != s.Amount {
			return nil, ErrAmountMismatch.With("payment %s is %s, refund of %s: only the full amount can be refunded", s.ID, s.Amount, c.Amount)
		}
		return []events.Payload{events.PaymentRefunded{PaymentID: s.ID, Amount: c.Amount, Reason: c.Reason}}, nil
	case StatusRefunded:
		return nil, nil
	default:
		return nil, ErrNotRefundable.With("payment %s is %s", s.ID, s.Status)
	}
}

// checkReason checks the reason of a Fail, Void or Refund, which may be
// the payment provider's own words.
func checkReason(c Command, reason string) error {
	return aggregates.RefuseText(c.commandName(), events.CheckText("reason", reason, events.ProviderText))
}
