package events

// PaymentRequested ("payment.requested") starts a payment for an order:
// the amount to collect, the provider, the provider's intent id and the
// page where the shopper pays.
type PaymentRequested struct {
	PaymentID   string `json:"payment_id"`
	OrderID     string `json:"order_id"`
	Amount      Money  `json:"amount"`
	Provider    string `json:"provider"`
	IntentID    string `json:"intent_id"`
	CheckoutURL string `json:"checkout_url"`
}

// EventType returns "payment.requested".
func (PaymentRequested) EventType() string { return "payment.requested" }

// PaymentAuthorized ("payment.authorized") records that the provider
// authorized the amount without capturing it yet.
type PaymentAuthorized struct {
	PaymentID string `json:"payment_id"`
	Amount    Money  `json:"amount"`
}

// EventType returns "payment.authorized".
func (PaymentAuthorized) EventType() string { return "payment.authorized" }

// PaymentCaptured ("payment.captured") records that the money was taken;
// ProviderRef is the provider's reference for the charge.
type PaymentCaptured struct {
	PaymentID   string `json:"payment_id"`
	Amount      Money  `json:"amount"`
	ProviderRef string `json:"provider_ref"`
}

// EventType returns "payment.captured".
func (PaymentCaptured) EventType() string { return "payment.captured" }

// PaymentFailed ("payment.failed") records a decline or error at the
// provider; no money moved.
type PaymentFailed struct {
	PaymentID string `json:"payment_id"`
	Reason    string `json:"reason"`
}

// EventType returns "payment.failed".
func (PaymentFailed) EventType() string { return "payment.failed" }

// PaymentVoided ("payment.voided") records that Ordo abandoned an
// uncaptured payment, for example on payment timeout.
type PaymentVoided struct {
	PaymentID string `json:"payment_id"`
	Reason    string `json:"reason"`
}

// EventType returns "payment.voided".
func (PaymentVoided) EventType() string { return "payment.voided" }

// PaymentRefunded ("payment.refunded") records that a captured amount was
// paid back in full.
type PaymentRefunded struct {
	PaymentID string `json:"payment_id"`
	Amount    Money  `json:"amount"`
	Reason    string `json:"reason"`
}

// EventType returns "payment.refunded".
func (PaymentRefunded) EventType() string { return "payment.refunded" }
