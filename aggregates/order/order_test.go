package order_test

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/ordo-shop/ordo/aggregates/aggregatetest"
	"github.com/ordo-shop/ordo/aggregates/order"
	"github.com/ordo-shop/ordo/events"
)

const (
	orderID  = "o-1"
	payID    = "p-1"
	checkout = "https://psp.test/pay/p-1"
)

func cny(a int64) events.Money { return events.Money{Amount: a, Currency: "CNY"} }

var (
	total    = cny(4498)
	customer = events.Customer{Name: "Li Wei", Email: "li@example.com"}
	address  = events.Address{Line1: "1 Tea Street", City: "Hangzhou", Country: "CN"}

	// The events of the happy path and the side exits.
	placed = events.OrderPlaced{
		OrderID:    orderID,
		CustomerID: "c-1",
		Customer:   customer,
		Lines: []events.OrderLine{
			{SKU: "TEA-250", Qty: 2, UnitPrice: cny(1999), Amount: cny(3998)},
			{SKU: "CUP-1", Qty: 1, UnitPrice: cny(500), Amount: cny(500)},
		},
		Total:           total,
		ShippingAddress: address,
		IdempotencyKey:  "key-1",
		RequestHash:     "hash-1",
	}
	stockReserved = events.OrderStockReserved{OrderID: orderID}
	payRequested  = events.OrderPaymentRequested{OrderID: orderID, PaymentID: payID, Amount: total, CheckoutURL: checkout}
	paid          = events.OrderPaid{OrderID: orderID, PaymentID: payID, Amount: total}
	shipped       = events.OrderShipped{OrderID: orderID, Carrier: "SF", TrackingNumber: "SF123"}
	delivered     = events.OrderDelivered{OrderID: orderID}
	rejected      = events.OrderRejected{OrderID: orderID, Reason: "out of stock", ShortSKUs: []string{"TEA-250"}}
	cancelled     = events.OrderCancelled{OrderID: orderID, Reason: "changed mind", CancelledBy: "customer"}
	cancelledPaid = events.OrderCancelled{OrderID: orderID, Reason: "changed mind", CancelledBy: "customer", WasPaid: true}
	refunded      = events.OrderRefunded{OrderID: orderID, PaymentID: payID, Amount: total}
	// attentionRefunded is what a refund of a shipped order records.
	attentionRefunded = events.OrderAttentionRequired{OrderID: orderID, Reason: events.AttentionRefundedAfterShipment, PaymentID: payID, Amount: total}
	paymentPending    = []events.Payload{placed, stockReserved, payRequested}

	// history leads an order to each status; "" is an order that does
	// not exist.
	history = map[order.Status][]events.Payload{
		"":                         nil,
		order.StatusPlaced:         {placed},
		order.StatusStockReserved:  {placed, stockReserved},
		order.StatusPaymentPending: paymentPending,
		order.StatusPaid:           {placed, stockReserved, payRequested, paid},
		order.StatusShipped:        {placed, stockReserved, payRequested, paid, shipped},
		order.StatusDelivered:      {placed, stockReserved, payRequested, paid, shipped, delivered},
		order.StatusRejected:       {placed, rejected},
		order.StatusCancelled:      {placed, stockReserved, payRequested, paid, cancelledPaid},
		order.StatusRefunded:       {placed, stockReserved, payRequested, paid, cancelledPaid, refunded},
	}

	// One command of each kind, as the process managers and the API send
	// them for the order above.
	place = order.Place{
		OrderID:    orderID,
		CustomerID: "c-1",
		Customer:   customer,
		Lines: []events.OrderLine{
			{SKU: "TEA-250", Qty: 2, UnitPrice: cny(1999)},
			{SKU: "CUP-1", Qty: 1, UnitPrice: cny(500)},
		},
		ShippingAddress: address,
		IdempotencyKey:  "key-1",
		RequestHash:     "hash-1",
	}
	markStockReserved = order.MarkStockReserved{}
	requestPayment    = order.RequestPayment{PaymentID: payID, Amount: total, CheckoutURL: checkout}
	markPaid          = order.MarkPaid{PaymentID: payID, Amount: total}
	reject            = order.Reject{Reason: "out of stock", ShortSKUs: []string{"TEA-250"}}
	cancel            = order.Cancel{Reason: "changed mind", By: "customer"}
	ship              = order.Ship{Carrier: "SF", TrackingNumber: "SF123"}
	deliver           = order.Deliver{}
	markRefunded      = order.MarkRefunded{PaymentID: payID, Amount: total}
)

func given(evs ...events.Payload) order.State {
	return order.Decider().Fold(order.Initial(orderID), evs)
}

func check(t *testing.T, s order.State, when order.Command, then []events.Payload, wantErr error) {
	t.Helper()
	aggregatetest.Check(t, order.Decide, s, when, then, wantErr)
}

func evs(e ...events.Payload) []events.Payload { return e }

// TestTransitions covers every command from every status: each allowed
// transition, each idempotent repeat and each refusal.
func TestTransitions(t *testing.T) {
	none := []events.Payload(nil)
	type row struct {
		from Status
		when order.Command
		to   Status // status after the events, for allowed rows
		then []events.Payload
		err  error
	}
	const (
		missing        = ""
		placedS        = order.StatusPlaced
		stockReservedS = order.StatusStockReserved
		pendingS       = order.StatusPaymentPending
		paidS          = order.StatusPaid
		shippedS       = order.StatusShipped
		deliveredS     = order.StatusDelivered
		rejectedS      = order.StatusRejected
		cancelledS     = order.StatusCancelled
		refundedS      = order.StatusRefunded
	)
	var (
		notFound   = order.ErrOrderNotFound
		invalid    = order.ErrInvalidTransition
		notShip    = order.ErrNotShippable
		shippedErr = order.ErrAlreadyShipped
		notCancel  = order.ErrNotCancellable
	)
	rows := []row{
		{missing, place, placedS, evs(placed), nil},
		{missing, markStockReserved, "", nil, notFound},
		{missing, requestPayment, "", nil, notFound},
		{missing, markPaid, "", nil, notFound},
		{missing, reject, "", nil, notFound},
		{missing, cancel, "", nil, notFound},
		{missing, ship, "", nil, notFound},
		{missing, deliver, "", nil, notFound},
		{missing, markRefunded, "", nil, notFound},

		{placedS, place, placedS, none, nil},
		{placedS, markStockReserved, stockReservedS, evs(stockReserved), nil},
		{placedS, requestPayment, "", nil, invalid},
		{placedS, markPaid, "", nil, invalid},
		{placedS, reject, rejectedS, evs(rejected), nil},
		{placedS, cancel, cancelledS, evs(cancelled), nil},
		{placedS, ship, "", nil, notShip},
		{placedS, deliver, "", nil, invalid},
		{placedS, markRefunded, "", nil, invalid},

		{stockReservedS, place, stockReservedS, none, nil},
		{stockReservedS, markStockReserved, stockReservedS, none, nil},
		{stockReservedS, requestPayment, pendingS, evs(payRequested), nil},
		{stockReservedS, markPaid, "", nil, invalid},
		{stockReservedS, reject, "", nil, invalid},
		{stockReservedS, cancel, cancelledS, evs(cancelled), nil},
		{stockReservedS, ship, "", nil, notShip},
		{stockReservedS, deliver, "", nil, invalid},
		{stockReservedS, markRefunded, refundedS, evs(refunded), nil},

		{pendingS, place, pendingS, none, nil},
		{pendingS, markStockReserved, "", nil, invalid},
		{pendingS, requestPayment, pendingS, none, nil},
		{pendingS, markPaid, paidS, evs(paid), nil},
		{pendingS, reject, "", nil, invalid},
		{pendingS, cancel, cancelledS, evs(cancelled), nil},
		{pendingS, ship, "", nil, notShip},
		{pendingS, deliver, "", nil, invalid},
		{pendingS, markRefunded, refundedS, evs(refunded), nil},

		{paidS, place, paidS, none, nil},
		{paidS, markStockReserved, "", nil, invalid},
		{paidS, requestPayment, "", nil, invalid},
		{paidS, markPaid, paidS, none, nil},
		{paidS, reject, "", nil, invalid},
		{paidS, cancel, cancelledS, evs(cancelledPaid), nil},
		{paidS, ship, shippedS, evs(shipped), nil},
		{paidS, deliver, "", nil, invalid},
		{paidS, markRefunded, refundedS, evs(refunded), nil},

		{shippedS, place, shippedS, none, nil},
		{shippedS, markStockReserved, "", nil, invalid},
		{shippedS, requestPayment, "", nil, invalid},
		{shippedS, markPaid, "", nil, invalid},
		{shippedS, reject, "", nil, invalid},
		{shippedS, cancel, "", nil, shippedErr},
		{shippedS, ship, shippedS, none, nil},
		{shippedS, deliver, deliveredS, evs(delivered), nil},
		{shippedS, markRefunded, shippedS, evs(attentionRefunded), nil},

		{deliveredS, place, deliveredS, none, nil},
		{deliveredS, markStockReserved, "", nil, invalid},
		{deliveredS, requestPayment, "", nil, invalid},
		{deliveredS, markPaid, "", nil, invalid},
		{deliveredS, reject, "", nil, invalid},
		{deliveredS, cancel, "", nil, shippedErr},
		{deliveredS, ship, deliveredS, none, nil},
		{deliveredS, deliver, deliveredS, none, nil},
		{deliveredS, markRefunded, deliveredS, evs(attentionRefunded), nil},

		{rejectedS, place, rejectedS, none, nil},
		{rejectedS, markStockReserved, "", nil, invalid},
		{rejectedS, requestPayment, "", nil, invalid},
		{rejectedS, markPaid, "", nil, invalid},
		{rejectedS, reject, rejectedS, none, nil},
		{rejectedS, cancel, "", nil, notCancel},
		{rejectedS, ship, "", nil, notShip},
		{rejectedS, deliver, "", nil, invalid},
		{rejectedS, markRefunded, "", nil, invalid},

		{cancelledS, place, cancelledS, none, nil},
		{cancelledS, markStockReserved, "", nil, invalid},
		{cancelledS, requestPayment, "", nil, invalid},
		{cancelledS, markPaid, "", nil, invalid},
		{cancelledS, reject, "", nil, invalid},
		{cancelledS, cancel, cancelledS, none, nil},
		{cancelledS, ship, "", nil, notShip},
		{cancelledS, deliver, "", nil, invalid},
		{cancelledS, markRefunded, refundedS, evs(refunded), nil},

		{refundedS, place, refundedS, none, nil},
		{refundedS, markStockReserved, "", nil, invalid},
		{refundedS, requestPayment, "", nil, invalid},
		{refundedS, markPaid, "", nil, invalid},
		{refundedS, reject, "", nil, invalid},
		{refundedS, cancel, refundedS, none, nil},
		{refundedS, ship, "", nil, notShip},
		{refundedS, deliver, "", nil, invalid},
		{refundedS, markRefunded, refundedS, none, nil},
	}

	covered := map[string]bool{}
	for _, r := range rows {
		key := fmt.Sprintf("%s/%T", r.from, r.when)
		if covered[key] {
			t.Errorf("%s appears twice", key)
		}
		covered[key] = true
		name := string(r.from)
		if name == "" {
			name = "missing"
		}
		t.Run(fmt.Sprintf("%s/%T", name, r.when), func(t *testing.T) {
			s := given(history[r.from]...)
			if s.Status != r.from {
				t.Fatalf("history leads to %q, want %q", s.Status, r.from)
			}
			check(t, s, r.when, r.then, r.err)
			if r.err != nil {
				if errors.Is(r.err, order.ErrInvalidTransition) && !strings.Contains(errMessage(t, s, r.when), string(r.from)) {
					t.Errorf("message %q does not name the status", errMessage(t, s, r.when))
				}
				return
			}
			if after := order.Decider().Fold(s, r.then); after.Status != r.to {
				t.Errorf("status after %T = %q, want %q", r.when, after.Status, r.to)
			}
		})
	}
	if want := len(history) * 9; len(covered) != want {
		t.Errorf("the table covers %d status/command pairs, want %d", len(covered), want)
	}
}

// Status is order.Status, short for the table above.
type Status = order.Status

func errMessage(t *testing.T, s order.State, c order.Command) string {
	t.Helper()
	_, e := order.Decide(s, c)
	if e == nil {
		return ""
	}
	return e.Error()
}

func TestInvalidTransitionMessage(t *testing.T) {
	msg := errMessage(t, given(placed), markPaid)
	for _, want := range []string{"mark_paid", "placed"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message %q does not contain %q", msg, want)
		}
	}
}

func TestPlaceComputesAmounts(t *testing.T) {
	cmd := place
	cmd.Lines = []events.OrderLine{
		{SKU: "TEA-250", Qty: 2, UnitPrice: cny(1999)},                                   // amount left zero
		{SKU: "CUP-1", Qty: 1, UnitPrice: cny(500), Amount: cny(500)},                    // amount given and right
		{SKU: "FREE-SAMPLE", Qty: 3, UnitPrice: cny(0), Amount: cny(0)},                  // free
		{SKU: "BOX-1", Qty: order.MaxLineQty, UnitPrice: cny(1), Amount: events.Money{}}, // largest quantity
	}
	before := append([]events.OrderLine(nil), cmd.Lines...)
	want := placed
	want.Lines = []events.OrderLine{
		{SKU: "TEA-250", Qty: 2, UnitPrice: cny(1999), Amount: cny(3998)},
		{SKU: "CUP-1", Qty: 1, UnitPrice: cny(500), Amount: cny(500)},
		{SKU: "FREE-SAMPLE", Qty: 3, UnitPrice: cny(0), Amount: cny(0)},
		{SKU: "BOX-1", Qty: order.MaxLineQty, UnitPrice: cny(1), Amount: cny(order.MaxLineQty)},
	}
	want.Total = cny(3998 + 500 + order.MaxLineQty)
	check(t, order.Initial(orderID), cmd, evs(want), nil)
	if !reflect.DeepEqual(cmd.Lines, before) {
		t.Errorf("Decide modified the command's lines: %#v", cmd.Lines)
	}

	// A zero-value State (no id yet) takes the id from the command.
	check(t, order.State{}, place, evs(placed), nil)
}

func TestPlaceValidation(t *testing.T) {
	const maxInt64 = 1<<63 - 1
	line := func(sku string, qty int64, price events.Money) events.OrderLine {
		return events.OrderLine{SKU: sku, Qty: qty, UnitPrice: price}
	}
	lines := func(n int) []events.OrderLine {
		out := make([]events.OrderLine, n)
		for i := range out {
			out[i] = line(fmt.Sprintf("SKU-%03d", i), 1, cny(100))
		}
		return out
	}
	tests := []struct {
		name   string
		change func(p *order.Place)
		want   error // nil: accepted
	}{
		{"no order id", func(p *order.Place) { p.OrderID = "" }, order.ErrInvalidOrder},
		{"order id of another order", func(p *order.Place) { p.OrderID = "o-2" }, order.ErrInvalidOrder},
		{"no customer id", func(p *order.Place) { p.CustomerID = "" }, order.ErrInvalidOrder},
		{"no lines", func(p *order.Place) { p.Lines = nil }, order.ErrInvalidOrder},
		{"max lines", func(p *order.Place) { p.Lines = lines(order.MaxLines) }, nil},
		{"too many lines", func(p *order.Place) { p.Lines = lines(order.MaxLines + 1) }, order.ErrTooManyLines},
		{"line without SKU", func(p *order.Place) { p.Lines[1].SKU = "" }, order.ErrInvalidOrder},
		{"duplicate SKU", func(p *order.Place) { p.Lines[1].SKU = p.Lines[0].SKU }, order.ErrDuplicateSKU},
		{"zero quantity", func(p *order.Place) { p.Lines[0].Qty = 0 }, order.ErrInvalidQuantity},
		{"negative quantity", func(p *order.Place) { p.Lines[0].Qty = -1 }, order.ErrInvalidQuantity},
		{"quantity over the limit", func(p *order.Place) { p.Lines[0].Qty = order.MaxLineQty + 1 }, order.ErrInvalidQuantity},
		{"negative unit price", func(p *order.Place) { p.Lines[0].UnitPrice = cny(-1) }, order.ErrInvalidPrice},
		{"unit price without currency", func(p *order.Place) { p.Lines[0].UnitPrice.Currency = "" }, order.ErrInvalidPrice},
		{"unit price in lower-case currency", func(p *order.Place) { p.Lines[0].UnitPrice.Currency = "cny" }, order.ErrInvalidPrice},
		{"mixed currencies", func(p *order.Place) { p.Lines[1].UnitPrice.Currency = "EUR" }, order.ErrMixedCurrency},
		{"wrong line amount", func(p *order.Place) { p.Lines[0].Amount = cny(1) }, order.ErrInvalidOrder},
		{"line amount in another currency", func(p *order.Place) { p.Lines[0].Amount = events.Money{Amount: 3998, Currency: "EUR"} }, order.ErrInvalidOrder},
		{"line amount overflows", func(p *order.Place) { p.Lines[0] = line("BIG", 2, cny(maxInt64/2+1)) }, order.ErrAmountOverflow},
		{"line amount at the limit", func(p *order.Place) { p.Lines = []events.OrderLine{line("BIG", 1, cny(maxInt64))} }, nil},
		{"total overflows", func(p *order.Place) {
			p.Lines = []events.OrderLine{line("A", 1, cny(maxInt64)), line("B", 1, cny(1))}
		}, order.ErrAmountOverflow},
		{"customer id that is not an id", func(p *order.Place) { p.CustomerID = "c.1>" }, order.ErrInvalidOrder},
		{"SKU that is not an id", func(p *order.Place) { p.Lines[1].SKU = "CUP\x001" }, order.ErrInvalidOrder},
		{"lower-case country", func(p *order.Place) { p.ShippingAddress.Country = "cn" }, nil},
		{"no customer details or address", func(p *order.Place) {
			p.Customer, p.ShippingAddress, p.IdempotencyKey, p.RequestHash = events.Customer{}, events.Address{}, "", ""
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := place
			cmd.Lines = append([]events.OrderLine(nil), place.Lines...)
			tt.change(&cmd)
			got, err := order.Decide(order.Initial(orderID), cmd)
			if tt.want == nil {
				if err != nil || len(got) != 1 {
					t.Fatalf("Decide = %v, %v; want one event", got, err)
				}
				return
			}
			check(t, order.Initial(orderID), cmd, nil, tt.want)
		})
	}
}

func TestPlaceIdempotency(t *testing.T) {
	retry := place
	retry.Lines = nil // the body is not compared again: the hash stands for it
	other := place
	other.RequestHash = "hash-2"
	for status, h := range history {
		if status == "" {
			continue
		}
		t.Run(string(status), func(t *testing.T) {
			check(t, given(h...), retry, nil, nil)
			check(t, given(h...), other, nil, order.ErrIdempotencyKeyReused)
		})
	}
}

func TestPaymentChecks(t *testing.T) {
	eur := events.Money{Amount: 4498, Currency: "EUR"}
	pending := given(paymentPending...)
	paidState := given(append(paymentPending, paid)...)
	tests := []struct {
		name string
		s    order.State
		when order.Command
		want error
	}{
		{"request: amount below total", given(placed, stockReserved), order.RequestPayment{PaymentID: payID, Amount: cny(4497)}, order.ErrAmountMismatch},
		{"request: other currency", given(placed, stockReserved), order.RequestPayment{PaymentID: payID, Amount: eur}, order.ErrAmountMismatch},
		{"request: no payment id", given(placed, stockReserved), order.RequestPayment{Amount: total}, order.ErrInvalidCommand},
		{"request again: other payment", pending, order.RequestPayment{PaymentID: "p-2", Amount: total}, order.ErrPaymentMismatch},
		{"request again: other amount", pending, order.RequestPayment{PaymentID: payID, Amount: cny(1)}, order.ErrAmountMismatch},
		{"paid: other payment", pending, order.MarkPaid{PaymentID: "p-2", Amount: total}, order.ErrPaymentMismatch},
		{"paid: other amount", pending, order.MarkPaid{PaymentID: payID, Amount: cny(4499)}, order.ErrAmountMismatch},
		{"paid: other currency", pending, order.MarkPaid{PaymentID: payID, Amount: eur}, order.ErrAmountMismatch},
		{"paid: no payment id", pending, order.MarkPaid{Amount: total}, order.ErrInvalidCommand},
		{"paid again: other payment", paidState, order.MarkPaid{PaymentID: "p-2", Amount: total}, order.ErrPaymentMismatch},
		{"paid again: other amount", paidState, order.MarkPaid{PaymentID: payID, Amount: cny(1)}, order.ErrAmountMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { check(t, tt.s, tt.when, nil, tt.want) })
	}
}

func TestShipChecks(t *testing.T) {
	paidState := given(append(paymentPending, paid)...)
	check(t, paidState, order.Ship{Carrier: "SF"}, nil, order.ErrInvalidCommand)
	check(t, paidState, order.Ship{TrackingNumber: "SF123"}, nil, order.ErrInvalidCommand)
	shippedState := given(append(paymentPending, paid, shipped)...)
	check(t, shippedState, order.Ship{Carrier: "SF", TrackingNumber: "SF999"}, nil, order.ErrAlreadyShipped)
	check(t, shippedState, order.Ship{Carrier: "EMS", TrackingNumber: "SF123"}, nil, order.ErrAlreadyShipped)
	// Delivered: the same hand-over again is already so, another refused.
	deliveredState := given(append(paymentPending, paid, shipped, delivered)...)
	check(t, deliveredState, ship, nil, nil)
	check(t, deliveredState, order.Ship{Carrier: "SF", TrackingNumber: "SF999"}, nil, order.ErrAlreadyShipped)
	check(t, deliveredState, order.Ship{Carrier: "EMS", TrackingNumber: "SF123"}, nil, order.ErrAlreadyShipped)
}

// TestRepeatsAreIdempotentByOutcome: cancel of a cancelled or refunded
// order, deliver of a delivered one and ship with the same carrier and
// tracking number decide no events (decision 025); a conflicting one is
// still refused.
func TestRepeatsAreIdempotentByOutcome(t *testing.T) {
	for _, tc := range []struct {
		name string
		s    order.State
		when order.Command
		err  error
	}{
		{"cancel cancelled", given(history[order.StatusCancelled]...), order.Cancel{Reason: "again", By: "admin"}, nil},
		{"cancel refunded after a cancel", given(history[order.StatusRefunded]...), cancel, nil},
		{"cancel refunded by the provider", given(append(history[order.StatusPaid], refunded)...), cancel, nil},
		{"deliver delivered", given(history[order.StatusDelivered]...), deliver, nil},
		{"ship shipped, same tracking", given(history[order.StatusShipped]...), ship, nil},
		{"ship delivered, same tracking", given(history[order.StatusDelivered]...), ship, nil},
		{"ship shipped, other tracking", given(history[order.StatusShipped]...), order.Ship{Carrier: "SF", TrackingNumber: "SF999"}, order.ErrAlreadyShipped},
		{"ship after cancel", given(history[order.StatusCancelled]...), ship, order.ErrNotShippable},
		{"cancel shipped", given(history[order.StatusShipped]...), cancel, order.ErrAlreadyShipped},
		{"cancel rejected", given(history[order.StatusRejected]...), cancel, order.ErrNotCancellable},
		{"deliver cancelled", given(history[order.StatusCancelled]...), deliver, order.ErrInvalidTransition},
	} {
		t.Run(tc.name, func(t *testing.T) { check(t, tc.s, tc.when, nil, tc.err) })
	}
}

func TestCancelRecordsWhoAndWhetherPaid(t *testing.T) {
	timeout := order.Cancel{Reason: "payment timeout", By: "system"}
	check(t, given(paymentPending...), timeout,
		evs(events.OrderCancelled{OrderID: orderID, Reason: "payment timeout", CancelledBy: "system", WasPaid: false}), nil)
	s := given(append(paymentPending, paid, cancelledPaid)...)
	if !s.Paid || s.CancelledBy != "customer" || s.CancelReason != "changed mind" {
		t.Errorf("cancelled paid order: %+v", s)
	}
	// A second cancel, for another reason, is still a no-op.
	check(t, s, timeout, nil, nil)
}

func TestMarkRefunded(t *testing.T) {
	// The order was cancelled while it waited for payment (a timeout); the
	// payment was captured late and refunded.
	late := given(append(paymentPending, cancelled)...)
	check(t, late, markRefunded, evs(refunded), nil)
	if late.Paid {
		t.Error("an order cancelled before payment is marked paid")
	}
	// Cancelled before the payment was recorded on the order: whichever
	// payment was refunded is accepted.
	early := given(placed, stockReserved, cancelled)
	check(t, early, order.MarkRefunded{PaymentID: "p-9", Amount: total},
		evs(events.OrderRefunded{OrderID: orderID, PaymentID: "p-9", Amount: total}), nil)
	if s := order.Evolve(early, events.OrderRefunded{OrderID: orderID, PaymentID: "p-9", Amount: total}); s.PaymentID != "p-9" {
		t.Errorf("refunded payment not recorded: %+v", s)
	}

	check(t, late, order.MarkRefunded{PaymentID: "p-2", Amount: total}, nil, order.ErrPaymentMismatch)
	check(t, late, order.MarkRefunded{PaymentID: payID, Amount: cny(100)}, nil, order.ErrAmountMismatch)
	check(t, late, order.MarkRefunded{Amount: total}, nil, order.ErrInvalidCommand)
}

// TestRefundAfterPaid: the payment provider refunds a paid order that has
// not shipped. The order becomes refunded, once, and can no longer be
// shipped or cancelled.
func TestRefundAfterPaid(t *testing.T) {
	s := given(history[order.StatusPaid]...)
	check(t, s, markRefunded, evs(refunded), nil)
	after := order.Evolve(s, refunded)
	if after.Status != order.StatusRefunded || !after.Refunded || !after.Paid {
		t.Fatalf("after the refund: %+v", after)
	}
	check(t, after, markRefunded, nil, nil)
	check(t, after, ship, nil, order.ErrNotShippable)
	check(t, after, cancel, nil, nil) // already ended: nothing to do

	check(t, s, order.MarkRefunded{PaymentID: "p-2", Amount: total}, nil, order.ErrPaymentMismatch)
	check(t, s, order.MarkRefunded{PaymentID: payID, Amount: cny(1)}, nil, order.ErrAmountMismatch)

	// Reported refunded before the order recorded its payment request
	// (the webhooks overtook the checkout): refunded as well.
	early := given(placed, stockReserved)
	check(t, early, markRefunded, evs(refunded), nil)
}

// TestRefundAfterShipment: a refund of a shipped (or delivered) order
// keeps the goods' status and opens a customer-service task, once.
func TestRefundAfterShipment(t *testing.T) {
	for _, st := range []order.Status{order.StatusShipped, order.StatusDelivered} {
		s := given(history[st]...)
		check(t, s, markRefunded, evs(attentionRefunded), nil)
		after := order.Evolve(s, attentionRefunded)
		if after.Status != st || !after.Refunded || after.Attention != events.AttentionRefundedAfterShipment {
			t.Fatalf("%s after the refund: %+v", st, after)
		}
		check(t, after, markRefunded, nil, nil)
		check(t, after, cancel, nil, order.ErrAlreadyShipped)
		check(t, s, order.MarkRefunded{PaymentID: "p-2", Amount: total}, nil, order.ErrPaymentMismatch)
	}
	// A shipped order refunded at the provider can still be delivered.
	shippedRefunded := given(append(history[order.StatusShipped], attentionRefunded)...)
	check(t, shippedRefunded, deliver, evs(delivered), nil)
}

func TestRejectKeepsShortSKUs(t *testing.T) {
	cmd := order.Reject{Reason: "out of stock", ShortSKUs: []string{"TEA-250", "CUP-1"}}
	got, err := order.Decide(given(placed), cmd)
	if err != nil {
		t.Fatal(err)
	}
	cmd.ShortSKUs[0] = "changed"
	if e := got[0].(events.OrderRejected); e.ShortSKUs[0] != "TEA-250" {
		t.Errorf("event shares the command's slice: %v", e.ShortSKUs)
	}
	s := given(placed, got[0])
	if s.Status != order.StatusRejected || s.RejectReason != "out of stock" {
		t.Errorf("state after rejection: %+v", s)
	}
}

func TestUnknownCommands(t *testing.T) {
	for _, c := range []order.Command{nil, &order.Cancel{}, &order.Place{}} {
		check(t, given(placed), c, nil, order.ErrInvalidCommand)
		check(t, order.Initial(orderID), c, nil, order.ErrInvalidCommand)
	}
}

func TestDecider(t *testing.T) {
	d := order.Decider()
	if d.Type != "order" || order.AggregateType != "order" {
		t.Errorf("Type = %q", d.Type)
	}
	if s := d.Initial(orderID); s.ID != orderID || s.Exists || s.Status != "" {
		t.Errorf("Initial = %+v", s)
	}
	s := d.Fold(d.Initial(orderID), history[order.StatusDelivered])
	want := order.State{
		ID: orderID, Exists: true, CustomerID: "c-1", Customer: customer, Lines: placed.Lines, Total: total,
		ShippingAddress: address, Status: order.StatusDelivered, PaymentID: payID, CheckoutURL: checkout, Paid: true,
		Carrier: "SF", TrackingNumber: "SF123", IdempotencyKey: "key-1", RequestHash: "hash-1",
	}
	if !reflect.DeepEqual(s, want) {
		t.Errorf("delivered order:\n%+v\nwant\n%+v", s, want)
	}
}

func TestEvolveIgnoresOtherEvents(t *testing.T) {
	s := given(placed)
	for _, e := range []events.Payload{events.PaymentFailed{PaymentID: payID}, events.InventoryReserved{SKU: "TEA-250"}} {
		if got := order.Evolve(s, e); !reflect.DeepEqual(got, s) {
			t.Errorf("Evolve(%T) changed the state", e)
		}
	}
}

func TestEvolveDoesNotMutate(t *testing.T) {
	e := placed
	e.Lines = append([]events.OrderLine(nil), placed.Lines...)
	s := order.Evolve(order.Initial(orderID), e)
	e.Lines[0].Qty = 99 // the event's slice is not the state's
	if s.Lines[0].Qty != 2 {
		t.Errorf("state shares the event's lines: %+v", s.Lines)
	}

	before := given(history[order.StatusRefunded]...)
	snapshot := before
	snapshot.Lines = append([]events.OrderLine(nil), before.Lines...)
	for _, h := range history {
		for _, e := range h {
			_ = order.Evolve(before, e)
		}
	}
	if !reflect.DeepEqual(before, snapshot) {
		t.Errorf("Evolve modified its input:\n%+v\nwas\n%+v", before, snapshot)
	}
}

// TestTextThatCannotBeStoredIsRefused sends every text field of every
// command with each kind of bad text: each is refused with
// ErrInvalidText naming the field, whatever the API checked before.
func TestTextThatCannotBeStoredIsRefused(t *testing.T) {
	placeWith := func(edit func(*order.Place, string)) func(string) order.Command {
		return func(v string) order.Command {
			p := place
			edit(&p, v)
			return p
		}
	}
	reserved := given(placed, stockReserved)
	paidState := given(append(paymentPending, paid)...)
	fields := []struct {
		field string
		s     order.State
		cmd   func(v string) order.Command
	}{
		{"customer.name", order.Initial(orderID), placeWith(func(p *order.Place, v string) { p.Customer.Name = v })},
		{"customer.email", order.Initial(orderID), placeWith(func(p *order.Place, v string) { p.Customer.Email = v })},
		{"customer.phone", order.Initial(orderID), placeWith(func(p *order.Place, v string) { p.Customer.Phone = v })},
		{"shipping_address.name", order.Initial(orderID), placeWith(func(p *order.Place, v string) { p.ShippingAddress.Name = v })},
		{"shipping_address.line1", order.Initial(orderID), placeWith(func(p *order.Place, v string) { p.ShippingAddress.Line1 = v })},
		{"shipping_address.line2", order.Initial(orderID), placeWith(func(p *order.Place, v string) { p.ShippingAddress.Line2 = v })},
		{"shipping_address.city", order.Initial(orderID), placeWith(func(p *order.Place, v string) { p.ShippingAddress.City = v })},
		{"shipping_address.region", order.Initial(orderID), placeWith(func(p *order.Place, v string) { p.ShippingAddress.Region = v })},
		{"shipping_address.postal_code", order.Initial(orderID), placeWith(func(p *order.Place, v string) { p.ShippingAddress.PostalCode = v })},
		{"shipping_address.country", order.Initial(orderID), placeWith(func(p *order.Place, v string) { p.ShippingAddress.Country = v })},
		{"idempotency_key", order.Initial(orderID), placeWith(func(p *order.Place, v string) { p.IdempotencyKey = v })},
		{"request_hash", order.Initial(orderID), placeWith(func(p *order.Place, v string) { p.RequestHash = v })},
		{"checkout_url", reserved, func(v string) order.Command {
			return order.RequestPayment{PaymentID: payID, Amount: total, CheckoutURL: v}
		}},
		{"reason", given(placed), func(v string) order.Command { return order.Reject{Reason: v} }},
		{"reason", given(placed), func(v string) order.Command { return order.Cancel{Reason: v, By: "customer"} }},
		{"cancelled_by", given(placed), func(v string) order.Command { return order.Cancel{Reason: "r", By: v} }},
		{"carrier", paidState, func(v string) order.Command { return order.Ship{Carrier: v, TrackingNumber: "SF1"} }},
		{"tracking_number", paidState, func(v string) order.Command { return order.Ship{Carrier: "SF", TrackingNumber: v} }},
	}
	for _, f := range fields {
		for what, v := range aggregatetest.BadText {
			t.Run(fmt.Sprintf("%T/%s/%s", f.cmd("x"), f.field, what), func(t *testing.T) {
				aggregatetest.CheckTextRefused(t, order.Decide, f.s, f.cmd(v), f.field)
			})
		}
	}
}

// TestNotesMayHaveSeveralLines: a cancellation reason may hold tabs and
// line breaks; a carrier, one line, may not.
func TestNotesMayHaveSeveralLines(t *testing.T) {
	note := "Changed my mind.\r\n\tSorry!"
	check(t, given(placed), order.Cancel{Reason: note, By: "customer"},
		evs(events.OrderCancelled{OrderID: orderID, Reason: note, CancelledBy: "customer"}), nil)
	paidState := given(append(paymentPending, paid)...)
	aggregatetest.CheckTextRefused[order.State, order.Command](t, order.Decide, paidState, order.Ship{Carrier: "S\nF", TrackingNumber: "1"}, "carrier")
}
