package process

import (
	"context"
	"crypto/sha256"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/ordo-shop/ordo/aggregates"
	"github.com/ordo-shop/ordo/aggregates/payment"
	"github.com/ordo-shop/ordo/eventlog"
	"github.com/ordo-shop/ordo/events"
	"github.com/ordo-shop/ordo/internal/command"
	"github.com/ordo-shop/ordo/internal/psp"
)

// PaymentIDFor returns the id of the payment of an order. It is derived
// from the order id, so every process manager instance, retry and
// compensation agrees on it without a lookup, and an order has at most
// one payment.
func PaymentIDFor(orderID string) string {
	sum := sha256.Sum256([]byte("ordo.payment\x00" + orderID))
	return "pay_" + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(sum[:16]))
}

// Errors of [PaymentSync.Apply].
var (
	// ErrUnknownPayment: the intent's reference names no payment.
	ErrUnknownPayment = errors.New("unknown payment")
	// ErrIntentMismatch: the intent's id, amount or currency differ from
	// the payment's; nothing was changed.
	ErrIntentMismatch = errors.New("intent does not match the payment")
)

// PaymentSync brings a payment aggregate in line with what the provider
// says about its intent. The webhook endpoint, reconciliation, the
// payment timeout and the answers to void and refund calls all go through
// [PaymentSync.Apply], so they agree and any of them can heal what
// another missed. It is safe for concurrent use.
type PaymentSync struct {
	payments *command.Handler[payment.State, payment.Command]
	refusals eventlog.RefusalLog
	provider string
	log      *slog.Logger
}

// NewPaymentSync returns a PaymentSync over the payment command handler.
// refusals keeps every report Apply refuses (a report that contradicts
// the log must leave a trace beyond a log line; on JetStream the DLQ
// stream's dlq.refused.psp subject); provider names the PSP in commit
// metadata.
func NewPaymentSync(payments *command.Handler[payment.State, payment.Command], refusals eventlog.RefusalLog, provider string, log *slog.Logger) (*PaymentSync, error) {
	if payments == nil || refusals == nil {
		return nil, errors.New("process: payment sync needs the payment handler and a refusal log")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &PaymentSync{payments: payments, refusals: refusals, provider: provider, log: log}, nil
}

// Applied says what [PaymentSync.Apply] did.
type Applied struct {
	// Payment is the payment after the call.
	Payment payment.State
	// Events counts the events appended (0: the payment already was in
	// the intent's state, or the report was stale).
	Events int
	// Stale is set when the payment has moved past what the intent says
	// (an out-of-order report); nothing was changed.
	Stale string
}

// Apply records the intent's status on its payment: captured → Capture,
// refunded → Capture (if missed) and Refund, failed → Fail, voided →
// Void, authorized → Authorize. The command ids derive from the payment
// and the status, so a duplicate report, whatever its source, appends
// nothing. cause is stored as the commits' causation id.
//
// It returns [ErrUnknownPayment] if the intent's reference names no
// payment and [ErrIntentMismatch] if the intent id, amount or currency do
// not match the payment; in both cases the payment is not changed. A
// mismatch is stored in the refusal log (with the intent as reported, the
// cause and the reason) before ErrIntentMismatch is returned; if it
// cannot be stored, Apply returns that error instead, so the reporter
// retries.
func (p *PaymentSync) Apply(ctx context.Context, in psp.Intent, cause string) (Applied, error) {
	if in.Reference == "" || !events.ValidID(in.Reference) {
		return Applied{}, fmt.Errorf("%w: reference %q", ErrUnknownPayment, in.Reference)
	}
	// The fields checked below never change once a payment exists, so
	// the handler's state will do; a payment it does not know is asked of
	// the log (the handler caches no absent aggregate), so "unknown" is
	// the log's answer, not a stale cache's.
	cur, err := p.payments.State(ctx, in.Reference, command.Cached)
	if err != nil {
		return Applied{}, err
	}
	st := cur.State
	if !st.Exists {
		return Applied{}, fmt.Errorf("%w: %s", ErrUnknownPayment, in.Reference)
	}
	var mismatch error
	switch {
	case in.ID != st.IntentID || in.Amount != st.Amount:
		mismatch = fmt.Errorf("%w: payment %s is %s with intent %s; the report says %s with intent %s",
			ErrIntentMismatch, st.ID, st.Amount, st.IntentID, in.Amount, in.ID)
	case in.Status == psp.StatusRefunded && in.Refunded != 0 && in.Refunded != in.Amount.Amount:
		mismatch = fmt.Errorf("%w: partial refund of %d reported for payment %s", ErrIntentMismatch, in.Refunded, st.ID)
	}
	if mismatch != nil {
		p.log.Warn("psp report refused: intent does not match the payment",
			"payment", st.ID, "order", st.OrderID, "cause", cause,
			"intent", in.ID, "want_intent", st.IntentID, "amount", in.Amount.String(), "want_amount", st.Amount.String(),
			"status", string(in.Status))
		report, err := json.Marshal(in)
		if err != nil {
			return Applied{Payment: st}, err
		}
		if _, err := p.refusals.AddRefusedReport(ctx, eventlog.RefusedReport{
			Source: "psp", Cause: cause, AggregateType: payment.AggregateType, AggregateID: st.ID,
			Report: report, Reason: mismatch.Error(), RefusedAt: time.Now().UTC(), Correlated: st.OrderID,
		}); err != nil {
			return Applied{Payment: st}, fmt.Errorf("record refused psp report: %w", err)
		}
		return Applied{Payment: st}, mismatch
	}
	var cmds []payment.Command
	switch in.Status {
	case psp.StatusAuthorized:
		cmds = []payment.Command{payment.Authorize{Amount: in.Amount}}
	case psp.StatusCaptured:
		cmds = []payment.Command{payment.Capture{Amount: in.Amount, ProviderRef: in.CaptureRef}}
	case psp.StatusRefunded:
		if st.Status != payment.StatusCaptured && st.Status != payment.StatusRefunded {
			cmds = append(cmds, payment.Capture{Amount: in.Amount, ProviderRef: in.CaptureRef})
		}
		cmds = append(cmds, payment.Refund{Amount: in.Amount, Reason: "refunded at " + p.provider})
	case psp.StatusFailed:
		cmds = []payment.Command{payment.Fail{Reason: in.FailureReason}}
	case psp.StatusVoided:
		cmds = []payment.Command{payment.Void{Reason: "voided at " + p.provider}}
	}
	out := Applied{Payment: st}
	for _, c := range cmds {
		res, err := p.payments.Handle(ctx, command.Request[payment.Command]{
			AggregateID: st.ID,
			CommandID:   "psp-" + shortHash(st.ID, string(in.Status), fmt.Sprintf("%T", c)),
			Command:     c,
			Metadata:    events.Metadata{CorrelationID: st.OrderID, CausationID: cause, Actor: "psp:" + p.provider},
		})
		var de *aggregates.DomainError
		if errors.As(err, &de) && de.Kind == aggregates.KindRule {
			// The payment moved past what this report says: an
			// out-of-order or contradicting report changes nothing.
			cur, serr := p.payments.State(ctx, st.ID, command.Cached)
			if serr == nil {
				out.Payment = cur.State
			}
			out.Stale = de.Code
			p.log.Info("psp report ignored", "payment", st.ID, "status", string(in.Status), "payment_status", string(out.Payment.Status), "code", de.Code, "cause", cause)
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out.Payment = res.State
		out.Events += len(res.Events)
	}
	return out, nil
}

func shortHash(parts ...string) string {
	h := sha256.New()
	for _, s := range parts {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return fmt.Sprintf("%x", h.Sum(nil)[:16])
}
