package postgres_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/ordo-shop/ordo/eventlog"
	"github.com/ordo-shop/ordo/eventlog/logtest"
	"github.com/ordo-shop/ordo/projections"
	"github.com/ordo-shop/ordo/projections/postgres"
)

func (e *env) reconcile(s *postgres.Store) projections.Reconciliation {
	e.t.Helper()
	res, err := s.Reconcile(e.ctx, e.log, postgres.ReconcileOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	return res
}

func (e *env) exec(sql string, args ...any) {
	e.t.Helper()
	if _, err := e.pg.Pool().Exec(e.ctx, sql, args...); err != nil {
		e.t.Fatalf("%s: %v", sql, err)
	}
}

// commitCount counts the commits of the log.
func (e *env) commitCount() int {
	e.t.Helper()
	n := 0
	if err := logtest.Replay(e.ctx, e.log, eventlog.TypeOrder, 0, func(eventlog.Record) error { n++; return nil }); err != nil {
		e.t.Fatal(err)
	}
	return n
}

// drifts renders drifts as "order where kind", sorted.
func drifts(ds []projections.Drift) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.OrderID + " " + d.Where() + " " + d.Kind
	}
	slices.Sort(out)
	return out
}

// TestReconcileNamesEveryCorruption: a read model the projector filled
// agrees with the log (jsonb reorders the address's keys, PostgreSQL cuts
// times to microseconds: neither is drift); then every kind of damage to
// it is reported, naming the order, the row and the column.
func TestReconcileNamesEveryCorruption(t *testing.T) {
	e := newEnv(t, 4)
	e.place("o", 24, 3)
	if err := e.runner(e.pg, nil).CatchUp(e.ctx, 0); err != nil {
		t.Fatal(err)
	}
	res := e.reconcile(e.pg)
	if len(res.Drifts) != 0 {
		t.Fatalf("a fresh read model drifts: %v", drifts(res.Drifts))
	}
	if res.Projection != postgres.Name || res.Target != "order_status_v1" || res.Orders != 24 || res.Commits != e.commitCount() || len(res.Checkpoints) != 4 {
		t.Fatalf("reconciliation %+v", res)
	}
	if want := 24 + 24*2 + e.logEvents(); res.Rows != want {
		t.Fatalf("compared %d rows, want %d", res.Rows, want)
	}

	// o-1 is delivered (path 1), o-0 cancelled (path 0).
	s := "order_status_v1."
	e.exec("UPDATE " + s + "orders SET status = 'delivered' WHERE order_id = 'o-0'")
	e.exec("UPDATE " + s + "orders SET customer = jsonb_set(customer, '{email}', '\"x@example.com\"'), updated_at = updated_at + interval '1 second' WHERE order_id = 'o-2'")
	e.exec("DELETE FROM " + s + "orders WHERE order_id = 'o-3'")
	e.exec("INSERT INTO " + s + "orders SELECT 'ghost', customer_id, customer, shipping_address, status, total_amount, currency, payment_status, payment_id, checkout_url, carrier, tracking_number, status_reason, created_at, updated_at, version, last_seq FROM " + s + "orders WHERE order_id = 'o-4'")
	e.exec("UPDATE " + s + "order_lines SET qty = qty + 1 WHERE order_id = 'o-5' AND line_no = 2")
	e.exec("DELETE FROM " + s + "order_lines WHERE order_id = 'o-6' AND line_no = 1")
	e.exec("DELETE FROM " + s + "order_timeline WHERE order_id = 'o-7' AND version = 2")
	e.exec("INSERT INTO " + s + "order_timeline SELECT order_id, 99, seq, at, event_type, status, detail, commit_id, causation_id, correlation_id, actor FROM " + s + "order_timeline WHERE order_id = 'o-8' AND version = 1")
	e.exec("UPDATE " + s + "order_timeline SET at = at + interval '1 millisecond', actor = 'mallory' WHERE order_id = 'o-9' AND version = 1")

	res = e.reconcile(e.pg)
	want := []string{
		"ghost orders extra",
		"o-0 orders.status differs",
		"o-2 orders.customer differs",
		"o-2 orders.updated_at differs",
		"o-3 orders missing",
		"o-5 order_lines[line_no=2].qty differs",
		"o-6 order_lines[line_no=1] missing",
		"o-7 order_timeline[version=2] missing",
		"o-8 order_timeline[version=99] extra",
		"o-9 order_timeline[version=1].actor differs",
		"o-9 order_timeline[version=1].at differs",
	}
	if got := drifts(res.Drifts); !slices.Equal(got, want) {
		t.Fatalf("drifts:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, d := range res.Drifts {
		switch d.OrderID + " " + d.Field {
		case "o-0 status":
			if d.Log != "cancelled" || d.Store != "delivered" {
				t.Errorf("status drift %+v", d)
			}
		case "o-5 qty":
			if d.Log != "1" || d.Store != "2" {
				t.Errorf("qty drift %+v", d)
			}
		case "o-9 actor":
			if d.Log != "test:cust-0" || d.Store != "mallory" {
				t.Errorf("actor drift %+v", d)
			}
		}
		if d.Projection != postgres.Name {
			t.Errorf("drift of %q", d.Projection)
		}
	}

	// A checkpoint past the end of the log.
	e.exec("UPDATE " + s + "checkpoints SET seq = seq + 1000 WHERE partition = 2")
	res = e.reconcile(e.pg)
	if got := drifts(res.Drifts); !slices.Contains(got, " checkpoints[partition=2].seq differs") {
		t.Fatalf("a checkpoint ahead of the log is not reported: %v", got)
	}
}

// TestReconcileFoldsOnlyWhatTheCheckpointsCover: a read model that has
// applied each partition up to another point is not drift; without the
// checkpoint rule every unapplied commit would be.
func TestReconcileFoldsOnlyWhatTheCheckpointsCover(t *testing.T) {
	e := newEnv(t, 4)
	e.place("o", 40, 4)
	last := e.mustLast()
	var byPart [4][]eventlog.Record
	if err := logtest.Replay(e.ctx, e.log, eventlog.TypeOrder, 0, func(r eventlog.Record) error {
		p := e.log.Partition(r.Commit.AggregateID)
		byPart[p] = append(byPart[p], r)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	// Partition p applied up to (p+1)/5 of the log: none is complete.
	applied := 0
	for p, recs := range byPart {
		to := last * uint64(p+1) / 5
		n := 0
		for n < len(recs) && recs[n].Seq <= to {
			n++
		}
		if err := e.pg.Sink().Commit(e.ctx, p, 0, to, recs[:n]); err != nil {
			t.Fatal(err)
		}
		applied += n
	}
	res := e.reconcile(e.pg)
	if len(res.Drifts) != 0 {
		t.Fatalf("a lagging read model drifts: %v", drifts(res.Drifts))
	}
	if res.Commits != applied || applied == 0 || applied == e.commitCount() {
		t.Fatalf("folded %d commits, the read model applied %d of %d", res.Commits, applied, e.commitCount())
	}
	// The same read model caught up still agrees.
	if err := e.runner(e.pg, nil).CatchUp(e.ctx, 0); err != nil {
		t.Fatal(err)
	}
	if res := e.reconcile(e.pg); len(res.Drifts) != 0 || res.Commits != e.commitCount() {
		t.Fatalf("after catching up: %d commits, drifts %v", res.Commits, drifts(res.Drifts))
	}
}

// TestReconcileWhileTheProjectorRuns: orders are written and projected
// while reconciliations run; none of them may see drift.
func TestReconcileWhileTheProjectorRuns(t *testing.T) {
	e := newEnv(t, 4)
	e.place("before", 20, 2)
	ctx, cancel := context.WithCancel(e.ctx)
	done := make(chan error, 1)
	go func() { done <- e.runner(e.pg, nil).Run(ctx) }()
	defer func() { cancel(); <-done }()
	loadDone := make(chan struct{})
	go func() {
		defer close(loadDone)
		e.place("during", 60, 2)
	}()
	other := e.open(e.dbURL) // as orderctl would: its own pool
	for i, loading := 0, true; loading; i++ {
		select {
		case <-loadDone:
			loading = false // and one more, the projector still applying the end
		default:
		}
		res := e.reconcile(other)
		if len(res.Drifts) != 0 {
			t.Fatalf("reconciliation %d: %v", i, drifts(res.Drifts))
		}
		t.Logf("reconciliation %d: %d commits folded", i, res.Commits)
	}
}
