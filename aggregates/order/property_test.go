package order_test

import (
	"errors"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/ordo-shop/ordo/aggregates"
	"github.com/ordo-shop/ordo/aggregates/aggregatetest"
	"github.com/ordo-shop/ordo/aggregates/order"
	"github.com/ordo-shop/ordo/events"
)

// allowed lists the status changes the machine permits.
var allowed = map[[2]order.Status]bool{
	{"", order.StatusPlaced}:                                true,
	{order.StatusPlaced, order.StatusStockReserved}:         true,
	{order.StatusPlaced, order.StatusRejected}:              true,
	{order.StatusPlaced, order.StatusCancelled}:             true,
	{order.StatusStockReserved, order.StatusPaymentPending}: true,
	{order.StatusStockReserved, order.StatusCancelled}:      true,
	{order.StatusPaymentPending, order.StatusPaid}:          true,
	{order.StatusPaymentPending, order.StatusCancelled}:     true,
	{order.StatusPaid, order.StatusShipped}:                 true,
	{order.StatusPaid, order.StatusCancelled}:               true,
	{order.StatusShipped, order.StatusDelivered}:            true,
	{order.StatusCancelled, order.StatusRefunded}:           true,
	{order.StatusStockReserved, order.StatusRefunded}:       true,
	{order.StatusPaymentPending, order.StatusRefunded}:      true,
	{order.StatusPaid, order.StatusRefunded}:                true,
	// A refund of shipped goods keeps the status (attention required).
	{order.StatusShipped, order.StatusShipped}:     true,
	{order.StatusDelivered, order.StatusDelivered}: true,
}

// TestRandomHistories drives orders with random command sequences, valid
// and not, and checks that deciding and evolving agree:
//
//   - a refused command returns a DomainError and no events;
//   - every status change is one the machine allows;
//   - a command that produced events produces none when repeated;
//   - folding the whole log, also after a trip through the JSON registry,
//     rebuilds the state reached step by step;
//   - the state's own invariants hold at every step.
func TestRandomHistories(t *testing.T) {
	other := place
	other.RequestHash = "hash-2"
	pool := []order.Command{
		place, other,
		markStockReserved,
		requestPayment, order.RequestPayment{PaymentID: "p-2", Amount: total}, order.RequestPayment{PaymentID: payID, Amount: cny(1)},
		markPaid, order.MarkPaid{PaymentID: "p-2", Amount: total},
		reject,
		cancel, order.Cancel{Reason: "payment timeout", By: "system"},
		ship, order.Ship{Carrier: "EMS", TrackingNumber: "E1"},
		deliver,
		markRefunded, order.MarkRefunded{PaymentID: payID, Amount: cny(1)},
	}
	reg, err := events.Standard()
	if err != nil {
		t.Fatal(err)
	}
	d := order.Decider()
	rng := rand.New(rand.NewPCG(1, 2))
	reached := map[order.Status]bool{}

	for run := range 3000 {
		s := d.Initial(orderID)
		var log []events.Payload
		for range 1 + rng.IntN(25) {
			cmd := pool[rng.IntN(len(pool))]
			if rng.IntN(4) > 0 && !s.Exists {
				cmd = place // mostly start with a valid order
			}
			got, err := d.Decide(s, cmd)
			if err != nil {
				var de *aggregates.DomainError
				if !errors.As(err, &de) || de.Code == "" || got != nil {
					t.Fatalf("run %d: %T on %s: %v, %#v", run, cmd, s.Status, err, got)
				}
				continue
			}
			next := d.Fold(s, got)
			if len(got) > 0 {
				if !allowed[[2]order.Status{s.Status, next.Status}] {
					t.Fatalf("run %d: %T moved %q to %q", run, cmd, s.Status, next.Status)
				}
				if again, err := d.Decide(next, cmd); err != nil || again != nil {
					t.Fatalf("run %d: repeating %T on %s gave %#v, %v", run, cmd, next.Status, again, err)
				}
			} else if !reflect.DeepEqual(next, s) {
				t.Fatalf("run %d: no events but the state changed", run)
			}
			s = next
			log = append(log, got...)
			checkInvariants(t, s)
		}
		reached[s.Status] = true

		if folded := d.Fold(d.Initial(orderID), log); !reflect.DeepEqual(folded, s) {
			t.Fatalf("run %d: folding the log gives\n%+v\nwant\n%+v", run, folded, s)
		}
		if stored := aggregatetest.ViaJSON(t, reg, log); !reflect.DeepEqual(d.Fold(d.Initial(orderID), stored), s) {
			t.Fatalf("run %d: the log does not survive encoding", run)
		}
	}
	for st := range history {
		if st != "" && !reached[st] {
			t.Errorf("no random history ended in %q", st)
		}
	}
}

func checkInvariants(t *testing.T, s order.State) {
	t.Helper()
	if !s.Exists {
		if s.Status != "" {
			t.Fatalf("missing order has status %q", s.Status)
		}
		return
	}
	var sum int64
	for _, l := range s.Lines {
		sum += l.Amount.Amount
		if l.Amount.Amount != l.Qty*l.UnitPrice.Amount || l.Amount.Currency != s.Total.Currency {
			t.Fatalf("line %+v does not add up", l)
		}
	}
	if sum != s.Total.Amount {
		t.Fatalf("total %v, lines sum to %d", s.Total, sum)
	}
	if s.Paid && s.PaymentID == "" {
		t.Fatal("paid without a payment id")
	}
	if (s.Status == order.StatusShipped || s.Status == order.StatusDelivered) && !s.Paid {
		t.Fatalf("%s but not paid", s.Status)
	}
}
