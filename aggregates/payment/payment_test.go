package payment_test

import (
	"fmt"
	"reflect"
	"testing"

	"github.com/ordo-shop/ordo/aggregates/aggregatetest"
	"github.com/ordo-shop/ordo/aggregates/payment"
	"github.com/ordo-shop/ordo/events"
)

const (
	payID    = "p-1"
	orderID  = "o-1"
	checkout = "https://psp.test/pay/p-1"
)

func cny(a int64) events.Money { return events.Money{Amount: a, Currency: "CNY"} }

var (
	amount = cny(4498)

	requested  = events.PaymentRequested{PaymentID: payID, OrderID: orderID, Amount: amount, Provider: "sim", IntentID: "pi_1", CheckoutURL: checkout}
	authorized = events.PaymentAuthorized{PaymentID: payID, Amount: amount}
	captured   = events.PaymentCaptured{PaymentID: payID, Amount: amount, ProviderRef: "ch_1"}
	failed     = events.PaymentFailed{PaymentID: payID, Reason: "card declined"}
	voided     = events.PaymentVoided{PaymentID: payID, Reason: "payment timeout"}
	refunded   = events.PaymentRefunded{PaymentID: payID, Amount: amount, Reason: "order cancelled"}

	// history leads a payment to each status; "" is a payment that does
	// not exist.
	history = map[payment.Status][]events.Payload{
		"":                       nil,
		payment.StatusRequested:  {requested},
		payment.StatusAuthorized: {requested, authorized},
		payment.StatusCaptured:   {requested, authorized, captured},
		payment.StatusFailed:     {requested, failed},
		payment.StatusVoided:     {requested, voided},
		payment.StatusRefunded:   {requested, captured, refunded},
	}

	request   = payment.Request{OrderID: orderID, Amount: amount, Provider: "sim", IntentID: "pi_1", CheckoutURL: checkout}
	authorize = payment.Authorize{Amount: amount}
	capture   = payment.Capture{Amount: amount, ProviderRef: "ch_1"}
	fail      = payment.Fail{Reason: "card declined"}
	void      = payment.Void{Reason: "payment timeout"}
	refund    = payment.Refund{Amount: amount, Reason: "order cancelled"}
)

func given(evs ...events.Payload) payment.State {
	return payment.Decider().Fold(payment.Initial(payID), evs)
}

func evs(e ...events.Payload) []events.Payload { return e }

func check(t *testing.T, s payment.State, when payment.Command, then []events.Payload, wantErr error) {
	t.Helper()
	aggregatetest.Check(t, payment.Decide, s, when, then, wantErr)
}

// TestTransitions covers every command from every status: each allowed
// transition, each idempotent repeat and each refusal.
func TestTransitions(t *testing.T) {
	type Status = payment.Status
	const (
		missing     Status = ""
		requestedS         = payment.StatusRequested
		authorizedS        = payment.StatusAuthorized
		capturedS          = payment.StatusCaptured
		failedS            = payment.StatusFailed
		voidedS            = payment.StatusVoided
		refundedS          = payment.StatusRefunded
	)
	var (
		none          []events.Payload
		notFound      = payment.ErrPaymentNotFound
		notAuthorize  = payment.ErrNotAuthorizable
		notCapture    = payment.ErrNotCapturable
		alreadyCapt   = payment.ErrAlreadyCaptured
		notRefundable = payment.ErrNotRefundable
		invalid       = payment.ErrInvalidTransition
	)
	rows := []struct {
		from Status
		when payment.Command
		to   Status
		then []events.Payload
		err  error
	}{
		{missing, request, requestedS, evs(requested), nil},
		{missing, authorize, "", nil, notFound},
		{missing, capture, "", nil, notFound},
		{missing, fail, "", nil, notFound},
		{missing, void, "", nil, notFound},
		{missing, refund, "", nil, notFound},

		{requestedS, request, requestedS, none, nil},
		{requestedS, authorize, authorizedS, evs(authorized), nil},
		{requestedS, capture, capturedS, evs(captured), nil},
		{requestedS, fail, failedS, evs(failed), nil},
		{requestedS, void, voidedS, evs(voided), nil},
		{requestedS, refund, "", nil, notRefundable},

		{authorizedS, request, authorizedS, none, nil},
		{authorizedS, authorize, authorizedS, none, nil},
		{authorizedS, capture, capturedS, evs(captured), nil},
		{authorizedS, fail, failedS, evs(failed), nil},
		{authorizedS, void, voidedS, evs(voided), nil},
		{authorizedS, refund, "", nil, notRefundable},

		{capturedS, request, capturedS, none, nil},
		{capturedS, authorize, capturedS, none, nil},
		{capturedS, capture, capturedS, none, nil},
		{capturedS, fail, "", nil, alreadyCapt},
		{capturedS, void, "", nil, alreadyCapt},
		{capturedS, refund, refundedS, evs(refunded), nil},

		{failedS, request, failedS, none, nil},
		{failedS, authorize, "", nil, notAuthorize},
		{failedS, capture, "", nil, notCapture},
		{failedS, fail, failedS, none, nil},
		{failedS, void, "", nil, invalid},
		{failedS, refund, "", nil, notRefundable},

		{voidedS, request, voidedS, none, nil},
		{voidedS, authorize, "", nil, notAuthorize},
		{voidedS, capture, "", nil, notCapture},
		{voidedS, fail, "", nil, invalid},
		{voidedS, void, voidedS, none, nil},
		{voidedS, refund, "", nil, notRefundable},

		{refundedS, request, refundedS, none, nil},
		{refundedS, authorize, refundedS, none, nil},
		{refundedS, capture, "", nil, notCapture},
		{refundedS, fail, "", nil, alreadyCapt},
		{refundedS, void, "", nil, alreadyCapt},
		{refundedS, refund, refundedS, none, nil},
	}
	covered := map[string]bool{}
	for _, r := range rows {
		name := fmt.Sprintf("%s/%T", r.from, r.when)
		if r.from == missing {
			name = fmt.Sprintf("missing/%T", r.when)
		}
		if covered[name] {
			t.Errorf("%s appears twice", name)
		}
		covered[name] = true
		t.Run(name, func(t *testing.T) {
			s := given(history[r.from]...)
			if s.Status != r.from {
				t.Fatalf("history leads to %q, want %q", s.Status, r.from)
			}
			check(t, s, r.when, r.then, r.err)
			if r.err == nil {
				if after := payment.Decider().Fold(s, r.then); after.Status != r.to {
					t.Errorf("status after %T = %q, want %q", r.when, after.Status, r.to)
				}
			}
		})
	}
	if want := len(history) * 6; len(covered) != want {
		t.Errorf("the table covers %d status/command pairs, want %d", len(covered), want)
	}
}

func TestAmountChecks(t *testing.T) {
	eur := events.Money{Amount: 4498, Currency: "EUR"}
	tests := []struct {
		name string
		s    payment.State
		when payment.Command
		want error
	}{
		{"request again, other amount", given(requested), payment.Request{OrderID: orderID, Amount: cny(1)}, payment.ErrAlreadyRequested},
		{"request again, other currency", given(requested), payment.Request{OrderID: orderID, Amount: eur}, payment.ErrAlreadyRequested},
		{"request again, other order", given(requested), payment.Request{OrderID: "o-2", Amount: amount}, payment.ErrAlreadyRequested},
		{"request again after capture, other amount", given(requested, captured), payment.Request{OrderID: orderID, Amount: cny(1)}, payment.ErrAlreadyRequested},
		{"authorize other amount", given(requested), payment.Authorize{Amount: cny(4497)}, payment.ErrAmountMismatch},
		{"authorize other currency", given(requested), payment.Authorize{Amount: eur}, payment.ErrAmountMismatch},
		{"capture other amount", given(requested), payment.Capture{Amount: cny(4499)}, payment.ErrAmountMismatch},
		{"capture other currency", given(requested, authorized), payment.Capture{Amount: eur}, payment.ErrAmountMismatch},
		{"capture again, other amount", given(requested, captured), payment.Capture{Amount: cny(1)}, payment.ErrAmountMismatch},
		{"partial refund", given(requested, captured), payment.Refund{Amount: cny(1000)}, payment.ErrAmountMismatch},
		{"refund other currency", given(requested, captured), payment.Refund{Amount: eur}, payment.ErrAmountMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { check(t, tt.s, tt.when, nil, tt.want) })
	}
}

func TestRequestValidation(t *testing.T) {
	check(t, payment.State{}, request, nil, payment.ErrInvalidCommand)
	check(t, given(), payment.Request{Amount: amount}, nil, payment.ErrInvalidCommand)
	check(t, given(), payment.Request{OrderID: orderID, Amount: cny(-1)}, nil, payment.ErrInvalidAmount)
	check(t, given(), payment.Request{OrderID: orderID, Amount: events.Money{Amount: 1}}, nil, payment.ErrInvalidAmount)
	check(t, given(), payment.Request{OrderID: orderID, Amount: cny(0)},
		evs(events.PaymentRequested{PaymentID: payID, OrderID: orderID, Amount: cny(0)}), nil)
}

func TestUnknownCommands(t *testing.T) {
	for _, c := range []payment.Command{nil, &payment.Capture{Amount: amount}, &payment.Request{}} {
		check(t, given(requested), c, nil, payment.ErrInvalidCommand)
	}
}

func TestEvolve(t *testing.T) {
	base := payment.State{ID: payID, Exists: true, OrderID: orderID, Amount: amount, Provider: "sim", IntentID: "pi_1", CheckoutURL: checkout}
	state := func(st payment.Status, f func(*payment.State)) payment.State {
		s := base
		s.Status = st
		if f != nil {
			f(&s)
		}
		return s
	}
	tests := []struct {
		status payment.Status
		want   payment.State
	}{
		{payment.StatusRequested, state(payment.StatusRequested, nil)},
		{payment.StatusAuthorized, state(payment.StatusAuthorized, nil)},
		{payment.StatusCaptured, state(payment.StatusCaptured, func(s *payment.State) { s.ProviderRef = "ch_1" })},
		{payment.StatusFailed, state(payment.StatusFailed, func(s *payment.State) { s.FailReason = "card declined" })},
		{payment.StatusVoided, state(payment.StatusVoided, nil)},
		{payment.StatusRefunded, state(payment.StatusRefunded, func(s *payment.State) { s.ProviderRef = "ch_1" })},
	}
	for _, tt := range tests {
		if got := given(history[tt.status]...); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s:\n%+v\nwant\n%+v", tt.status, got, tt.want)
		}
	}
	s := given(requested)
	if got := payment.Evolve(s, events.OrderPaid{OrderID: orderID}); got != s {
		t.Error("Evolve applied an order event")
	}
}

func TestDecider(t *testing.T) {
	d := payment.Decider()
	if d.Type != "payment" || payment.AggregateType != "payment" {
		t.Errorf("Type = %q", d.Type)
	}
	if s := d.Initial(payID); s != (payment.State{ID: payID}) {
		t.Errorf("Initial = %+v", s)
	}
}

// TestTextThatCannotBeStoredIsRefused sends every text field of every
// command with each kind of bad text (a provider's reference or reason
// among them): each is refused with ErrInvalidText naming the field.
func TestTextThatCannotBeStoredIsRefused(t *testing.T) {
	fields := []struct {
		field string
		s     payment.State
		cmd   func(v string) payment.Command
	}{
		{"provider", given(), func(v string) payment.Command { r := request; r.Provider = v; return r }},
		{"intent_id", given(), func(v string) payment.Command { r := request; r.IntentID = v; return r }},
		{"checkout_url", given(), func(v string) payment.Command { r := request; r.CheckoutURL = v; return r }},
		{"provider_ref", given(requested), func(v string) payment.Command { return payment.Capture{Amount: amount, ProviderRef: v} }},
		{"reason", given(requested), func(v string) payment.Command { return payment.Fail{Reason: v} }},
		{"reason", given(requested), func(v string) payment.Command { return payment.Void{Reason: v} }},
		{"reason", given(requested, captured), func(v string) payment.Command { return payment.Refund{Amount: amount, Reason: v} }},
	}
	for _, f := range fields {
		for what, v := range aggregatetest.BadText {
			t.Run(fmt.Sprintf("%T/%s/%s", f.cmd("x"), f.field, what), func(t *testing.T) {
				aggregatetest.CheckTextRefused(t, payment.Decide, f.s, f.cmd(v), f.field)
			})
		}
	}
	// A provider's message may have several lines.
	check(t, given(requested), payment.Fail{Reason: "declined:\n\tinsufficient funds"},
		evs(events.PaymentFailed{PaymentID: payID, Reason: "declined:\n\tinsufficient funds"}), nil)
}
