package postgres_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/ordo-shop/ordo/projections"
	"github.com/ordo-shop/ordo/projections/postgres"
)

// TestRetryAppliesQuarantinedCommitsAfterAFix makes the database refuse
// some orders' cancellations (a check constraint standing for any data
// PostgreSQL refuses), lets the projector quarantine them and go on,
// removes the constraint (the fix), and retries: every quarantined
// commit is resolved and the read model equals a fresh replay of the
// log. A second retry finds nothing to do.
func TestRetryAppliesQuarantinedCommitsAfterAFix(t *testing.T) {
	e := newEnv(t, 4)
	e.place("ok", 30, 4)
	if _, err := e.pg.Pool().Exec(e.ctx, `ALTER TABLE order_status_v1.order_timeline
		ADD CONSTRAINT no_cancellations CHECK (event_type <> 'order.cancelled') NOT VALID`); err != nil {
		t.Fatal(err)
	}
	rctx, stop := context.WithCancel(e.ctx)
	var wg sync.WaitGroup
	r := e.runner(e.pg, nil)
	wg.Go(func() {
		if err := r.Run(rctx); err != nil {
			t.Error(err)
		}
	})
	e.place("bad", 30, 4) // RunOrders cancels some of them
	last := e.mustLast()
	ctx, cancel := context.WithTimeout(e.ctx, 90*time.Second)
	defer cancel()
	if ok, err := e.pg.WaitFor(ctx, last, ""); !ok || err != nil {
		t.Fatalf("the projector did not get past the refused commits to %d: %v", last, err)
	}
	stop()
	wg.Wait()
	open, err := e.pg.Quarantined(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(open) == 0 {
		t.Fatal("no commit was quarantined: the constraint refused nothing")
	}
	for _, q := range open {
		if q.State != projections.QuarantineOpen || q.AggregateID == "" || q.Attempts != projections.MaxPoisonAttempts {
			t.Errorf("quarantined: %+v", q)
		}
		o, ok, err := e.pg.Order(e.ctx, q.AggregateID)
		if err != nil || !ok || o.Degraded == nil || o.Degraded.Seq > q.Seq { // the first of the order's
			t.Errorf("order %s of quarantined seq %d: found %v, degraded %+v, err %v", q.AggregateID, q.Seq, ok, o.Degraded, err)
		}
	}

	// Reconciliation skips what the projector set aside, and finds
	// nothing else.
	rec, err := e.pg.Reconcile(e.ctx, e.log, postgres.ReconcileOptions{})
	if err != nil || len(rec.Drifts) != 0 || rec.Quarantined != len(open) {
		t.Errorf("reconcile with a quarantine: %d drifts %+v, %d quarantined (want %d), %v", len(rec.Drifts), rec.Drifts, rec.Quarantined, len(open), err)
	}

	if _, err := e.pg.Pool().Exec(e.ctx, "ALTER TABLE order_status_v1.order_timeline DROP CONSTRAINT no_cancellations"); err != nil {
		t.Fatal(err)
	}
	res, err := e.pg.Retry(e.ctx, e.log)
	if err != nil {
		t.Fatal(err)
	}
	orders := map[string]bool{}
	for _, q := range open {
		orders[q.AggregateID] = true
	}
	if len(res) != len(orders) {
		t.Errorf("retry went through %d orders, %d have quarantined commits", len(res), len(orders))
	}
	for _, x := range res {
		if !x.Resolved {
			t.Errorf("seq %d of %s not resolved: %s", x.Seq, x.AggregateID, x.Err)
		}
	}
	if left, err := e.pg.Quarantined(e.ctx); err != nil || len(left) != 0 {
		t.Errorf("after the retry, still quarantined: %+v (%v)", left, err)
	}
	for id := range orders {
		if o, _, err := e.pg.Order(e.ctx, id); err != nil || o.Degraded != nil {
			t.Errorf("order %s after the retry: degraded %+v, err %v", id, o.Degraded, err)
		}
	}
	sameSnapshot(t, "after the retry", e.snapshot(e.pg), e.fresh())
	if rec, err := e.pg.Reconcile(e.ctx, e.log, postgres.ReconcileOptions{}); err != nil || len(rec.Drifts) != 0 || rec.Quarantined != 0 {
		t.Errorf("reconcile after the retry: %+v, %v", rec, err)
	}
	if res, err := e.pg.Retry(e.ctx, e.log); err != nil || len(res) != 0 {
		t.Errorf("a second retry: %+v, %v", res, err)
	}
}
