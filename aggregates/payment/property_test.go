package payment_test

import (
	"errors"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/ordo-shop/ordo/aggregates"
	"github.com/ordo-shop/ordo/aggregates/aggregatetest"
	"github.com/ordo-shop/ordo/aggregates/payment"
	"github.com/ordo-shop/ordo/events"
)

// allowed lists the status changes the machine permits.
var allowed = map[[2]payment.Status]bool{
	{"", payment.StatusRequested}:                       true,
	{payment.StatusRequested, payment.StatusAuthorized}: true,
	{payment.StatusRequested, payment.StatusCaptured}:   true,
	{payment.StatusRequested, payment.StatusFailed}:     true,
	{payment.StatusRequested, payment.StatusVoided}:     true,
	{payment.StatusAuthorized, payment.StatusCaptured}:  true,
	{payment.StatusAuthorized, payment.StatusFailed}:    true,
	{payment.StatusAuthorized, payment.StatusVoided}:    true,
	{payment.StatusCaptured, payment.StatusRefunded}:    true,
}

// TestRandomHistories feeds payments random, duplicated and reordered
// provider reports and checks that deciding and evolving agree: refusals
// carry a DomainError and no events, every status change is allowed, a
// command that changed the state produces nothing when repeated, and the
// log (also through the JSON registry) folds back to the same state.
func TestRandomHistories(t *testing.T) {
	pool := []payment.Command{
		request, payment.Request{OrderID: "o-2", Amount: amount},
		authorize, payment.Authorize{Amount: cny(1)},
		capture, payment.Capture{Amount: cny(1), ProviderRef: "x"},
		fail, void,
		refund, payment.Refund{Amount: cny(1)},
	}
	reg, err := events.Standard()
	if err != nil {
		t.Fatal(err)
	}
	d := payment.Decider()
	rng := rand.New(rand.NewPCG(5, 6))
	reached := map[payment.Status]bool{}
	for run := range 2000 {
		s := d.Initial(payID)
		var log []events.Payload
		for range 1 + rng.IntN(12) {
			cmd := pool[rng.IntN(len(pool))]
			if !s.Exists && rng.IntN(4) > 0 {
				cmd = request
			}
			got, err := d.Decide(s, cmd)
			if err != nil {
				var de *aggregates.DomainError
				if !errors.As(err, &de) || de.Code == "" || got != nil {
					t.Fatalf("run %d: %#v on %s: %v, %#v", run, cmd, s.Status, err, got)
				}
				continue
			}
			next := d.Fold(s, got)
			if len(got) > 0 {
				if !allowed[[2]payment.Status{s.Status, next.Status}] {
					t.Fatalf("run %d: %#v moved %q to %q", run, cmd, s.Status, next.Status)
				}
				if again, err := d.Decide(next, cmd); err != nil || again != nil {
					t.Fatalf("run %d: repeating %#v on %s gave %#v, %v", run, cmd, next.Status, again, err)
				}
			} else if next != s {
				t.Fatalf("run %d: no events but the state changed", run)
			}
			if next.Exists && next.Amount != amount {
				t.Fatalf("run %d: amount changed to %v", run, next.Amount)
			}
			s = next
			log = append(log, got...)
		}
		reached[s.Status] = true
		if folded := d.Fold(d.Initial(payID), log); folded != s {
			t.Fatalf("run %d: folding the log gives %+v, want %+v", run, folded, s)
		}
		if stored := aggregatetest.ViaJSON(t, reg, log); !reflect.DeepEqual(d.Fold(d.Initial(payID), stored), s) {
			t.Fatalf("run %d: the log does not survive encoding", run)
		}
	}
	for st := range history {
		if st != "" && !reached[st] {
			t.Errorf("no random history ended in %q", st)
		}
	}
}
