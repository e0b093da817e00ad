// Package psp is Ordo's port to a payment service provider (PSP): the
// [Client] interface the checkout process manager calls, the wire types of
// the provider's API and webhooks, webhook signatures ([Sign], [Verify])
// and an HTTP implementation of the client ([HTTPClient]). Package
// internal/local/pspsim is a provider simulator that speaks the same HTTP API.
//
// The flow follows hosted-checkout providers such as Stripe or Adyen:
// Ordo creates a payment intent for the amount it computed, the shopper
// pays on the provider's page (the intent's CheckoutURL), and the provider
// reports the outcome asynchronously with a signed webhook. Ordo can also
// ask for an intent's status at any time (reconciliation), and void or
// refund it.
package psp

import (
	"context"
	"errors"
	"time"

	"github.com/ordo-shop/ordo/events"
)

// Status is where an intent is at the provider.
type Status string

// The intent statuses.
const (
	// StatusRequiresPayment: created, the shopper has not paid yet.
	StatusRequiresPayment Status = "requires_payment"
	// StatusAuthorized: the amount is held, not captured (manual capture).
	StatusAuthorized Status = "authorized"
	// StatusCaptured: the money was taken.
	StatusCaptured Status = "captured"
	// StatusFailed: declined; no money moved. Final.
	StatusFailed Status = "failed"
	// StatusVoided: abandoned by the merchant before capture. Final.
	StatusVoided Status = "voided"
	// StatusRefunded: captured, then paid back in full. Final.
	StatusRefunded Status = "refunded"
)

// Known reports whether s is one of the statuses above.
func (s Status) Known() bool {
	switch s {
	case StatusRequiresPayment, StatusAuthorized, StatusCaptured, StatusFailed, StatusVoided, StatusRefunded:
		return true
	}
	return false
}

// Pending reports whether the intent can still be paid.
func (s Status) Pending() bool { return s == StatusRequiresPayment || s == StatusAuthorized }

// Intent is one payment at the provider.
type Intent struct {
	// ID is the provider's id of the intent.
	ID string `json:"id"`
	// Reference is the merchant's id for the payment (Ordo's payment id)
	// and OrderID the order it pays.
	Reference string `json:"reference"`
	OrderID   string `json:"order_id"`
	// Amount is what the intent collects.
	Amount events.Money `json:"amount"`
	Status Status       `json:"status"`
	// CheckoutURL is the hosted page where the shopper pays.
	CheckoutURL string `json:"checkout_url"`
	// CaptureRef is the provider's reference of the capture.
	CaptureRef string `json:"capture_ref,omitempty"`
	// FailureReason says why the payment was declined.
	FailureReason string `json:"failure_reason,omitempty"`
	// Refunded is the amount paid back.
	Refunded int64 `json:"refunded,omitempty"`
	// Version counts the intent's changes, starting at 1.
	Version int       `json:"version"`
	Created time.Time `json:"created"`
	Updated time.Time `json:"updated"`
}

// CreateIntentRequest asks for a new intent.
type CreateIntentRequest struct {
	Reference string       `json:"reference"`
	OrderID   string       `json:"order_id"`
	Amount    events.Money `json:"amount"`
	// CaptureMethod is "automatic" (the default: a payment is captured
	// when the shopper pays) or "manual" (it is authorized, and captured
	// by [Client.Capture]).
	CaptureMethod string `json:"capture_method,omitempty"`
}

// RefundRequest asks to pay back a captured intent's Amount.
type RefundRequest struct {
	Amount events.Money `json:"amount"`
}

// Event is a webhook: what happened to an intent, and the intent after it.
type Event struct {
	// ID identifies the event; a redelivered event keeps its id.
	ID string `json:"id"`
	// Type is "intent.<status>", such as "intent.captured".
	Type    string    `json:"type"`
	Created time.Time `json:"created"`
	Intent  Intent    `json:"intent"`
}

// EventType returns the webhook event type reporting status s.
func EventType(s Status) string { return "intent." + string(s) }

// Errors returned by a [Client]. Implementations wrap them.
var (
	// ErrNotFound: no intent with that id.
	ErrNotFound = errors.New("psp: intent not found")
	// ErrInvalidState: the operation is not possible in the intent's
	// status, such as refunding an intent that was never captured.
	ErrInvalidState = errors.New("psp: operation not allowed in the intent's status")
	// ErrInvalidRequest: the provider refused the request as malformed.
	ErrInvalidRequest = errors.New("psp: invalid request")
	// ErrUnavailable: the provider could not be reached or failed; the
	// call may be retried with the same idempotency key.
	ErrUnavailable = errors.New("psp: provider unavailable")
)

// Client is what Ordo needs of a payment provider. Every call that changes
// an intent takes an idempotency key: repeating a call with the same key
// has the effect of one call and returns the same intent. Implementations
// are safe for concurrent use.
type Client interface {
	// Provider names the provider, as recorded in payment.requested.
	Provider() string
	// CreateIntent creates an intent, or returns the one created before
	// with the same key.
	CreateIntent(ctx context.Context, req CreateIntentRequest, key string) (Intent, error)
	// Capture captures an authorized intent; a captured one is returned
	// as it is.
	Capture(ctx context.Context, id, key string) (Intent, error)
	// Void abandons an intent that is not captured. An intent in a final
	// status, or captured, is returned as it is: the caller looks at its
	// status to learn that the void came too late.
	Void(ctx context.Context, id, key string) (Intent, error)
	// Refund pays a captured intent back in full; a refunded one is
	// returned as it is. Any other status is [ErrInvalidState].
	Refund(ctx context.Context, id string, req RefundRequest, key string) (Intent, error)
	// Intent returns an intent's current state (status lookup).
	Intent(ctx context.Context, id string) (Intent, error)
}
