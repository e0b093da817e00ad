package payment

import "github.com/ordo-shop/ordo/events"

// Command is a request to change a payment: one of [Request],
// [Authorize], [Capture], [Fail], [Void] and [Refund]. The set is closed:
// other packages cannot add commands. Pass commands as values, not
// pointers.
type Command interface {
	// commandName names the command in error messages; it also seals
	// the interface.
	commandName() string
}

// Request creates the payment of Amount for an order at a provider.
// Requesting it again for the same order and amount is a retry and
// produces nothing; anything else is refused with [ErrAlreadyRequested].
type Request struct {
	OrderID     string
	Amount      events.Money
	Provider    string
	IntentID    string
	CheckoutURL string
}

// Authorize records the provider's authorization of Amount.
type Authorize struct {
	Amount events.Money
}

// Capture records that the provider took Amount; ProviderRef is its
// reference for the charge.
type Capture struct {
	Amount      events.Money
	ProviderRef string
}

// Fail records a decline or error at the provider.
type Fail struct {
	Reason string
}

// Void abandons an uncaptured payment.
type Void struct {
	Reason string
}

// Refund pays a captured payment back. Only the full amount can be
// refunded.
type Refund struct {
	Amount events.Money
	Reason string
}

func (Request) commandName() string   { return "request" }
func (Authorize) commandName() string { return "authorize" }
func (Capture) commandName() string   { return "capture" }
func (Fail) commandName() string      { return "fail" }
func (Void) commandName() string      { return "void" }
func (Refund) commandName() string    { return "refund" }
