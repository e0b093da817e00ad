package payment

import "github.com/ordo-shop/ordo/aggregates"

// Errors returned by [Decide]. Each is a sentinel: Decide returns a copy
// with details, matched with errors.Is.
var (
	// ErrPaymentNotFound: a command other than Request names a payment
	// that does not exist.
	ErrPaymentNotFound = aggregates.NewError(aggregates.KindNotFound, "payment_not_found", "payment not found")
	// ErrInvalidCommand: a command is malformed (no payment or order id).
	ErrInvalidCommand = aggregates.NewError(aggregates.KindInvalid, "invalid_command", "invalid payment command")
	// ErrInvalidAmount: a requested amount is negative or has no valid
	// currency.
	ErrInvalidAmount = aggregates.NewError(aggregates.KindInvalid, "invalid_amount", "invalid payment amount")
	// ErrAlreadyRequested: Request names an existing payment with another
	// order or amount.
	ErrAlreadyRequested = aggregates.NewError(aggregates.KindConflict, "payment_already_requested", "payment already requested with other details")
	// ErrAmountMismatch: an amount or currency differs from the requested
	// one.
	ErrAmountMismatch = aggregates.NewError(aggregates.KindRule, "amount_mismatch", "amount does not match the payment")
	// ErrNotAuthorizable: Authorize a failed or voided payment.
	ErrNotAuthorizable = aggregates.NewError(aggregates.KindRule, "payment_not_authorizable", "payment cannot be authorized")
	// ErrNotCapturable: Capture a failed, voided or refunded payment.
	ErrNotCapturable = aggregates.NewError(aggregates.KindRule, "payment_not_capturable", "payment cannot be captured")
	// ErrAlreadyCaptured: Fail or Void a captured (or refunded) payment.
	ErrAlreadyCaptured = aggregates.NewError(aggregates.KindRule, "payment_already_captured", "payment already captured")
	// ErrNotRefundable: Refund a payment that was not captured.
	ErrNotRefundable = aggregates.NewError(aggregates.KindRule, "payment_not_refundable", "payment cannot be refunded")
	// ErrInvalidTransition: Fail a voided payment or Void a failed one.
	ErrInvalidTransition = aggregates.NewError(aggregates.KindRule, "invalid_transition", "invalid payment transition")
)
