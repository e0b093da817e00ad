package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/ordo-shop/ordo/events"
	"github.com/ordo-shop/ordo/internal/auth"
	"github.com/ordo-shop/ordo/internal/psp"
	"github.com/ordo-shop/ordo/process"
)

// PaymentWebhooks records what the payment provider reports about an
// intent on its payment; *process.PaymentSync is one. It returns
// process.ErrUnknownPayment and process.ErrIntentMismatch without changing
// anything.
type PaymentWebhooks interface {
	Apply(ctx context.Context, in psp.Intent, cause string) (process.Applied, error)
}

// webhookAck answers an accepted webhook, including a duplicate or a stale
// one (changed is false then).
type webhookAck struct {
	Received      bool   `json:"received"`
	EventID       string `json:"event_id"`
	PaymentID     string `json:"payment_id"`
	PaymentStatus string `json:"payment_status"`
	Changed       bool   `json:"changed"`
	Stale         string `json:"stale,omitempty"`
}

// pspWebhook receives the payment provider's signed webhooks: a bad or
// stale signature is 401; an intent whose id, amount or currency do not
// match the payment is 422 (logged, nothing changes); an unknown payment
// is 404, which makes the provider retry (the webhook can overtake the
// commit that records the payment). Duplicates and out-of-order reports
// are answered 200 and change nothing.
func (s *Server) pspWebhook(w http.ResponseWriter, r *http.Request, _ auth.Claims) error {
	if s.Payments == nil || len(s.PSPWebhookSecret) == 0 {
		return errorf(http.StatusServiceUnavailable, "psp_not_configured", "this instance does not accept payment webhooks")
	}
	body, err := s.readBody(w, r)
	if err != nil {
		return err
	}
	if err := psp.Verify(s.PSPWebhookSecret, r.Header.Get(psp.SignatureHeader), body, s.Now(), psp.DefaultTolerance); err != nil {
		s.log.WarnContext(r.Context(), "psp webhook refused: bad signature", "err", err, "remote", r.RemoteAddr)
		return errorf(http.StatusUnauthorized, "invalid_signature", "%v", err)
	}
	var ev psp.Event
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&ev); err != nil {
		return errorf(http.StatusBadRequest, "malformed_json", "the body is not a webhook event: %v", err)
	}
	if err := checkWebhook(ev); err != nil {
		return err
	}
	res, err := s.Payments.Apply(r.Context(), ev.Intent, "psp-event:"+ev.ID)
	switch {
	case errors.Is(err, process.ErrUnknownPayment):
		return errorf(http.StatusNotFound, "payment_not_found", "%v", err)
	case errors.Is(err, process.ErrIntentMismatch):
		s.log.WarnContext(r.Context(), "psp webhook refused: intent mismatch", "event", ev.ID, "type", ev.Type, "err", err)
		return errorf(http.StatusUnprocessableEntity, "intent_mismatch", "%v", err)
	case err != nil:
		return err
	}
	writeJSON(w, http.StatusOK, webhookAck{
		Received: true, EventID: ev.ID, PaymentID: res.Payment.ID, PaymentStatus: string(res.Payment.Status),
		Changed: res.Events > 0, Stale: res.Stale,
	})
	return nil
}

// checkWebhook checks what of a webhook may be stored: the event id (in
// the causation id of the commits it causes), the intent's id, and the
// capture reference and failure reason that go into payment events (a
// reference that is no payment id is answered 404 by Apply). A report Ordo cannot store is refused with a 400, which
// the provider sees, rather than appended.
func checkWebhook(ev psp.Event) error {
	switch {
	case ev.ID == "":
		return fieldErrorf("invalid_field", "id", "id must have 1..%d characters", events.TokenText.MaxRunes)
	case ev.Intent.ID == "":
		return fieldErrorf("missing_field", "intent.id", "intent.id and intent.reference are required")
	case ev.Intent.Reference == "":
		return fieldErrorf("missing_field", "intent.reference", "intent.id and intent.reference are required")
	case !ev.Intent.Status.Known():
		return fieldErrorf("invalid_field", "intent.status", "intent.status %q is not a payment intent status", truncateText(string(ev.Intent.Status)))
	}
	return textFieldError(events.CheckTexts(
		events.TextField{Name: "id", Value: ev.ID, Rule: events.TokenText},
		events.TextField{Name: "intent.id", Value: ev.Intent.ID, Rule: events.LineText},
		events.TextField{Name: "intent.capture_ref", Value: ev.Intent.CaptureRef, Rule: events.LineText},
		events.TextField{Name: "intent.failure_reason", Value: ev.Intent.FailureReason, Rule: events.ProviderText},
	))
}
