package postgres_test

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ordo-shop/ordo/aggregates/order"
	"github.com/ordo-shop/ordo/eventlog"
	"github.com/ordo-shop/ordo/eventlog/logtest"
	"github.com/ordo-shop/ordo/events"
	"github.com/ordo-shop/ordo/internal/command"
	"github.com/ordo-shop/ordo/internal/testkit"
	"github.com/ordo-shop/ordo/projections"
	"github.com/ordo-shop/ordo/projections/postgres"
	"github.com/ordo-shop/ordo/streams"
)

func TestMain(m *testing.M) {
	code := testkit.RunMain(m)
	postgres.StopBenchServer()
	os.Exit(code)
}

type env struct {
	t      *testing.T
	ctx    context.Context
	log    *streams.Store
	orders *command.Handler[order.State, order.Command]
	dbURL  string
	pg     *postgres.Store
}

func newEnv(t *testing.T, partitions int) *env {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	t.Cleanup(cancel)
	log, orders := testkit.OrderLog(t, partitions)
	e := &env{t: t, ctx: ctx, log: log, orders: orders, dbURL: testkit.Postgres(t)}
	e.pg = e.open(e.dbURL)
	return e
}

// open opens a Store, with its own pool, on database url.
func (e *env) open(url string) *postgres.Store {
	e.t.Helper()
	pool, err := pgxpool.New(e.ctx, url)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(pool.Close)
	s, err := postgres.Open(e.ctx, pool, postgres.Options{Partitions: e.log.Partitions(), Partition: e.log.Partition})
	if err != nil {
		e.t.Fatal(err)
	}
	return s
}

func (e *env) runner(s *postgres.Store, leases projections.Leases) *projections.Runner {
	e.t.Helper()
	r, err := projections.New(e.log, s.Sink(), leases, projections.Options{BatchSize: 50, IdlePoll: 50 * time.Millisecond, LeaseInterval: 50 * time.Millisecond, Logger: testLogger(e.t)})
	if err != nil {
		e.t.Fatal(err)
	}
	return r
}

// place runs n orders through their lives, from workers goroutines at
// once, so that orders' commits interleave in the log.
func (e *env) place(prefix string, n, workers int) {
	e.t.Helper()
	if err := testkit.RunOrders(e.ctx, e.orders, prefix, n, 3, workers); err != nil {
		e.t.Fatal(err)
	}
}

// fresh replays the whole log into a new database and returns its rows.
func (e *env) fresh() postgres.Snapshot {
	e.t.Helper()
	s := e.open(testkit.Postgres(e.t))
	if err := e.runner(s, nil).CatchUp(e.ctx, 0); err != nil {
		e.t.Fatal(err)
	}
	return e.snapshot(s)
}

func (e *env) snapshot(s *postgres.Store) postgres.Snapshot {
	e.t.Helper()
	snap, err := s.Snapshot(e.ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	return snap
}

// logEvents counts the order events in the log.
func (e *env) logEvents() int {
	e.t.Helper()
	n := 0
	if err := logtest.Replay(e.ctx, e.log, eventlog.TypeOrder, 0, func(r eventlog.Record) error {
		n += len(r.Commit.Events)
		return nil
	}); err != nil {
		e.t.Fatal(err)
	}
	return n
}

func sameSnapshot(t *testing.T, what string, got, want postgres.Snapshot) {
	t.Helper()
	for _, c := range []struct {
		name      string
		got, want []string
	}{{"orders", got.Orders, want.Orders}, {"lines", got.Lines, want.Lines}, {"timeline", got.Timeline, want.Timeline}} {
		if !slices.Equal(c.got, c.want) {
			t.Errorf("%s: %s differ: %d rows, fresh replay %d", what, c.name, len(c.got), len(c.want))
			for i := range min(len(c.got), len(c.want)) {
				if c.got[i] != c.want[i] {
					t.Errorf("first difference:\n got  %s\n want %s", c.got[i], c.want[i])
					break
				}
			}
		}
	}
}

func TestReadModelFollowsEveryPath(t *testing.T) {
	e := newEnv(t, 4)
	e.place("o", 12, 3)
	if err := e.runner(e.pg, nil).CatchUp(e.ctx, 0); err != nil {
		t.Fatal(err)
	}
	want := map[int]struct {
		status, payment, carrier string
		events                   int
	}{
		0: {"cancelled", postgres.PaymentNone, "", 2},
		1: {"delivered", postgres.PaymentCaptured, "SF", 6},
		2: {"rejected", postgres.PaymentNone, "", 2},
		3: {"refunded", postgres.PaymentRefunded, "", 6},
		4: {"cancelled", postgres.PaymentAbandoned, "", 4},
		5: {"payment_pending", postgres.PaymentPending, "", 3},
	}
	for i := range 12 {
		id := fmt.Sprintf("o-%d", i)
		w := want[i%testkit.OrderPaths]
		o, ok, err := e.pg.Order(e.ctx, id)
		if err != nil || !ok {
			t.Fatalf("%s: %v %v", id, ok, err)
		}
		if o.Status != w.status || o.Payment.Status != w.payment || o.Shipment.Carrier != w.carrier || o.Version != uint64(w.events) {
			t.Errorf("%s: status %s payment %s carrier %q version %d, want %+v", id, o.Status, o.Payment.Status, o.Shipment.Carrier, o.Version, w)
		}
		if o.CustomerID != fmt.Sprintf("cust-%d", i%3) || o.Customer.Name != "张伟" || o.ShippingAddress.City != "上海" {
			t.Errorf("%s: customer %s %+v %+v", id, o.CustomerID, o.Customer, o.ShippingAddress)
		}
		if o.Total != (events.Money{Amount: 4498, Currency: "CNY"}) || len(o.Lines) != 2 || o.Lines[0].Amount.Amount != 3998 || o.Lines[1].SKU != "CUP-1" {
			t.Errorf("%s: total %v lines %+v", id, o.Total, o.Lines)
		}
		if w.payment != postgres.PaymentNone && (o.Payment.PaymentID != "pay_"+id || o.Payment.CheckoutURL != "http://psp.local/pay/pay_"+id) {
			t.Errorf("%s: payment %+v", id, o.Payment)
		}
		if !o.UpdatedAt.After(o.CreatedAt) || o.LastSeq == 0 {
			t.Errorf("%s: created %v updated %v seq %d", id, o.CreatedAt, o.UpdatedAt, o.LastSeq)
		}
		tl, cust, ok, err := e.pg.Timeline(e.ctx, id)
		if err != nil || !ok || cust != o.CustomerID || len(tl) != w.events {
			t.Fatalf("%s: timeline %d entries (%v %v), want %d", id, len(tl), ok, err, w.events)
		}
		for n, entry := range tl {
			if entry.Version != uint64(n+1) || entry.Actor == "" || entry.CommitID != fmt.Sprintf("%s-%d", id, n) || entry.CausationID == "" || entry.At.IsZero() {
				t.Errorf("%s entry %d: %+v", id, n, entry)
			}
		}
		if tl[0].EventType != "order.placed" || tl[0].Status != "placed" || tl[len(tl)-1].Status != w.status {
			t.Errorf("%s timeline: %+v", id, tl)
		}
	}
	if _, ok, err := e.pg.Order(e.ctx, "nope"); ok || err != nil {
		t.Fatalf("unknown order: %v %v", ok, err)
	}
	// cust-0 has orders 0, 3, 6, 9; page through them two at a time.
	var got []string
	var cur *postgres.Cursor
	for page := 0; ; page++ {
		list, next, err := e.pg.CustomerOrders(e.ctx, "cust-0", "", cur, 2)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range list {
			got = append(got, o.OrderID)
		}
		if next == nil {
			break
		}
		c, err := postgres.ParseCursor(next.String())
		if err != nil || c != *next {
			t.Fatalf("cursor round trip: %+v %v", c, err)
		}
		cur = &c
		if page > 5 {
			t.Fatal("pagination does not end")
		}
	}
	slices.Sort(got)
	if fmt.Sprint(got) != "[o-0 o-3 o-6 o-9]" {
		t.Fatalf("cust-0 orders %v", got)
	}
	list, next, err := e.pg.CustomerOrders(e.ctx, "cust-0", "cancelled", nil, 10)
	// Newest first; the orders were placed concurrently, so which of the
	// two is newer is whatever their creation times say.
	if err != nil || next != nil || len(list) != 2 || list[0].CreatedAt.Before(list[1].CreatedAt) ||
		fmt.Sprint(slices.Sorted(slices.Values([]string{list[0].OrderID, list[1].OrderID}))) != "[o-0 o-6]" {
		t.Fatalf("cancelled orders of cust-0: %v %v %v", list, next, err)
	}
	if ok, err := e.pg.Reached(e.ctx, e.mustLast(), ""); !ok || err != nil {
		t.Fatalf("not caught up after CatchUp: %v", err)
	}
}

func (e *env) mustLast() uint64 {
	last, err := e.log.LastSeq(e.ctx, eventlog.TypeOrder)
	if err != nil {
		e.t.Fatal(err)
	}
	return last
}

func TestCommitRefusesAMovedCheckpoint(t *testing.T) {
	e := newEnv(t, 1)
	e.place("o", 2, 1)
	recs, err := logtest.FetchPartition(e.ctx, e.log, eventlog.TypeOrder, 0, 1, 100)
	if err != nil {
		t.Fatal(err)
	}
	sink := e.pg.Sink()
	last := recs[len(recs)-1].Seq
	if err := sink.Commit(e.ctx, 0, 0, last, recs); err != nil {
		t.Fatal(err)
	}
	// The same batch again, as a second writer that read the old
	// checkpoint would send it.
	if err := sink.Commit(e.ctx, 0, 0, last, recs); !errors.Is(err, projections.ErrCheckpointMoved) {
		t.Fatalf("second commit of the same batch: %v", err)
	}
	// A runner after it applies nothing more.
	if err := e.runner(e.pg, nil).CatchUp(e.ctx, 0); err != nil {
		t.Fatal(err)
	}
	if cp, err := sink.Checkpoint(e.ctx, 0); err != nil || cp != last {
		t.Fatalf("checkpoint %d (%v), want %d", cp, err, last)
	}
	tl, _, _, err := e.pg.Timeline(e.ctx, "o-0")
	if err != nil || len(tl) != 2 {
		t.Fatalf("timeline after a refused repeat: %d entries, %v", len(tl), err)
	}
	sameSnapshot(t, "after a repeated batch", e.snapshot(e.pg), e.fresh())
}

// TestCommitWritesNothingWhenTheCheckpointMoved: the checkpoint guard and
// the writes travel in one pipeline; when the guard fails, none of the
// batch's rows may stay, even rows that would not conflict.
func TestCommitWritesNothingWhenTheCheckpointMoved(t *testing.T) {
	e := newEnv(t, 1)
	e.place("o", 1, 1)
	recs, err := logtest.FetchPartition(e.ctx, e.log, eventlog.TypeOrder, 0, 1, 100)
	if err != nil {
		t.Fatal(err)
	}
	last := recs[len(recs)-1].Seq
	// Another writer moved the checkpoint without these rows.
	if _, err := e.pg.Pool().Exec(e.ctx, "UPDATE order_status_v1.checkpoints SET seq = 1 WHERE partition = 0"); err != nil {
		t.Fatal(err)
	}
	if err := e.pg.Sink().Commit(e.ctx, 0, 0, last, recs); !errors.Is(err, projections.ErrCheckpointMoved) {
		t.Fatalf("commit from a moved checkpoint: %v", err)
	}
	var n int
	if err := e.pg.Pool().QueryRow(e.ctx, "SELECT (SELECT count(*) FROM order_status.orders) + (SELECT count(*) FROM order_status.order_lines) + (SELECT count(*) FROM order_status.order_timeline)").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("%d rows written by a refused batch", n)
	}
	if cp, err := e.pg.Sink().Checkpoint(e.ctx, 0); err != nil || cp != 1 {
		t.Fatalf("checkpoint %d (%v), want 1", cp, err)
	}
}

// TestInstancesShareTheProjection runs three instances with leases while
// orders are being placed; an instance stops in the middle. The result
// must equal a fresh replay, and every instance must have worked.
func TestInstancesShareTheProjection(t *testing.T) {
	e := newEnv(t, 8)
	type inst struct {
		cancel context.CancelFunc
		done   chan error
	}
	start := func(name string) inst {
		s := e.open(e.dbURL)
		r := e.runner(s, s.Leases(name, 500*time.Millisecond))
		ctx, cancel := context.WithCancel(e.ctx)
		done := make(chan error, 1)
		go func() { done <- r.Run(ctx) }()
		return inst{cancel, done}
	}
	a, b, c := start("a"), start("b"), start("c")
	shared := func() bool {
		st, err := e.pg.Status(e.ctx, 0)
		if err != nil {
			t.Fatal(err)
		}
		owners := map[string]bool{}
		for _, l := range st.Leases {
			owners[l.Owner] = true
		}
		return len(owners) == 3 && len(st.Leases) == 8
	}
	testkit.Eventually(t, "the three instances to share the partitions", 30*time.Second, func() (bool, error) {
		if shared() {
			return true, nil
		}
		st, err := e.pg.Status(e.ctx, 0)
		return false, fmt.Errorf("leases %+v (%v)", st.Leases, err)
	})
	e.place("first", 60, 4)
	b.cancel()
	if err := <-b.done; err != nil {
		t.Fatal(err)
	}
	e.place("second", 60, 4)
	last := e.mustLast()
	for end := time.Now().Add(60 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if ok, err := e.pg.Reached(e.ctx, last, ""); err != nil || ok {
			break
		}
		if time.Now().After(end) {
			t.Fatal("the remaining instances did not catch up")
		}
	}
	a.cancel()
	c.cancel()
	<-a.done
	<-c.done
	got := e.snapshot(e.pg)
	if n := e.logEvents(); len(got.Timeline) != n {
		t.Errorf("%d timeline entries for %d events in the log", len(got.Timeline), n)
	}
	sameSnapshot(t, "shared projection", got, e.fresh())
}

func TestRebuildSwapsVersionsWhileTheProjectorRuns(t *testing.T) {
	e := newEnv(t, 4)
	e.place("before", 30, 3)
	r := e.runner(e.pg, nil)
	ctx, cancel := context.WithCancel(e.ctx)
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	defer func() { cancel(); <-done }()

	loadDone := make(chan struct{})
	go func() {
		defer close(loadDone)
		e.place("during", 60, 2)
	}()
	other := e.open(e.dbURL) // as orderctl would: its own pool
	var msgs []string
	res, err := other.Rebuild(e.ctx, e.log, postgres.RebuildOptions{BatchSize: 100, SwapWithin: 10, Progress: func(m string, _ ...any) { msgs = append(msgs, m) }})
	if err != nil {
		t.Fatal(err)
	}
	if res.From != 1 || res.To != 2 {
		t.Fatalf("rebuild %+v", res)
	}
	if _, err := other.Rebuild(e.ctx, e.log, postgres.RebuildOptions{}); err != nil {
		t.Fatalf("second rebuild: %v", err)
	}
	<-loadDone
	last := e.mustLast()
	if ok, err := e.pg.WaitFor(withTimeout(t, 30*time.Second), last, ""); !ok || err != nil {
		t.Fatalf("the projector did not follow the swap: %v", err)
	}
	st, err := e.pg.Status(e.ctx, last)
	if err != nil {
		t.Fatal(err)
	}
	if st.Live.Version != 3 || st.State != "live" || len(st.Versions) != 2 || st.Versions[0].State != "retired" {
		t.Fatalf("status after two rebuilds: %+v", st)
	}
	sameSnapshot(t, "after rebuilds", e.snapshot(e.pg), e.fresh())
	if !strings.Contains(strings.Join(msgs, ","), "dropped old version") {
		// the first rebuild had nothing to drop; the second dropped v1
		t.Logf("progress: %v", msgs)
	}
}

func withTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}

func TestMigrationsApplyOnceUnderConcurrentStarts(t *testing.T) {
	url := testkit.Postgres(t)
	ctx := withTimeout(t, time.Minute)
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	var wg sync.WaitGroup
	applied := make([][]int, 4)
	errs := make([]error, 4)
	for i := range 4 {
		wg.Go(func() { applied[i], errs[i] = postgres.Migrate(ctx, pool) })
	}
	wg.Wait()
	total := 0
	for i := range 4 {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		total += len(applied[i])
	}
	var n int
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM ordo.schema_migrations").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if total != n || n == 0 {
		t.Fatalf("%d migrations recorded, %d applied by the concurrent starts", n, total)
	}
	if _, err := pool.Exec(ctx, "INSERT INTO ordo.schema_migrations (version, name) VALUES (999, 'future')"); err != nil {
		t.Fatal(err)
	}
	if _, err := postgres.Migrate(ctx, pool); err == nil {
		t.Fatal("a database newer than the binary was accepted")
	}
}

func TestCursorsRefuseGarbage(t *testing.T) {
	good := postgres.Cursor{CreatedAt: time.UnixMicro(1700000000123456).UTC(), OrderID: "ord_x"}
	if c, err := postgres.ParseCursor(good.String()); err != nil || c != good {
		t.Fatalf("round trip: %+v %v", c, err)
	}
	forged := func(raw string) string { return base64.RawURLEncoding.EncodeToString([]byte(raw)) }
	for _, bad := range []string{"", "!!!", "bm9wZQ", good.String() + "=", "MS4xLg", "Mi4xLm8", "MS4tNS5v", strings.Repeat("A", 1000),
		forged("1.1700000000123456.ord\x00x"), forged("1.1700000000123456.ord\xffx"), forged("1.01700000000123456.ord_x"), forged("1.1700000000123456.ord x")} {
		if _, err := postgres.ParseCursor(bad); !errors.Is(err, postgres.ErrBadCursor) {
			t.Errorf("cursor %q accepted", bad)
		}
	}
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}

// TestLeasesArePerProjection: the read model's leases and another
// projection's (the search index's) divide the same partitions
// independently: holding all of one says nothing about the other, and the
// other's instances share its partitions among themselves.
func TestLeasesArePerProjection(t *testing.T) {
	e := newEnv(t, 8)
	claim := func(l *postgres.Leases) []int {
		t.Helper()
		got, err := l.Claim(e.ctx)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	status := e.pg.Leases("a", time.Minute)
	if got := claim(status); len(got) != 8 {
		t.Fatalf("order_status instance a holds %v, want all 8", got)
	}
	b := e.pg.LeasesFor("search", "b", time.Minute)
	if got := claim(b); len(got) != 8 {
		t.Fatalf("search instance b holds %v, want all 8 (a's leases are the read model's)", got)
	}
	c := e.pg.LeasesFor("search", "c", time.Minute)
	claim(c)       // c registers; b still holds everything
	gb := claim(b) // b gives up its surplus
	gc := claim(c) // c takes it
	if len(gb) != 4 || len(gc) != 4 {
		t.Fatalf("search instances hold %v and %v, want 4 each", gb, gc)
	}
	for _, p := range gb {
		if slices.Contains(gc, p) {
			t.Fatalf("partition %d held by both search instances: %v, %v", p, gb, gc)
		}
	}
	if got := claim(status); len(got) != 8 {
		t.Fatalf("order_status instance a holds %v after the search instances shared theirs, want all 8", got)
	}
}

// TestPSPRefundsInTheReadModel: a paid order refunded at the provider
// before it shipped is refunded; a shipped one stays shipped with its
// payment refunded, and its timeline carries the customer-service task.
func TestPSPRefundsInTheReadModel(t *testing.T) {
	e := newEnv(t, 2)
	for _, id := range []string{"r-paid", "r-shipped"} {
		cmds := testkit.OrderCommands(id, "cust-r", 1)[:4] // place … paid
		if id == "r-shipped" {
			cmds = append(cmds, order.Ship{Carrier: "SF", TrackingNumber: "SF1"})
		}
		cmds = append(cmds, order.MarkRefunded{PaymentID: "pay_" + id, Amount: events.Money{Amount: 4498, Currency: "CNY"}})
		for i, cmd := range cmds {
			if _, err := e.orders.Handle(e.ctx, command.Request[order.Command]{AggregateID: id, CommandID: fmt.Sprintf("%s-%d", id, i), Command: cmd}); err != nil {
				t.Fatalf("%s command %d (%T): %v", id, i, cmd, err)
			}
		}
	}
	if err := e.runner(e.pg, nil).CatchUp(e.ctx, 0); err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]struct{ status, last string }{
		"r-paid":    {"refunded", "order.refunded"},
		"r-shipped": {"shipped", "order.attention_required"},
	} {
		o, ok, err := e.pg.Order(e.ctx, id)
		if err != nil || !ok {
			t.Fatalf("%s: %v %v", id, ok, err)
		}
		if o.Status != want.status || o.Payment.Status != postgres.PaymentRefunded {
			t.Errorf("%s: status %s, payment %s; want %s, refunded", id, o.Status, o.Payment.Status, want.status)
		}
		tl, _, _, err := e.pg.Timeline(e.ctx, id)
		if err != nil || len(tl) == 0 {
			t.Fatalf("%s: timeline %v %v", id, tl, err)
		}
		last := tl[len(tl)-1]
		if last.EventType != want.last || last.Status != want.status {
			t.Errorf("%s: last timeline entry %+v, want %s with status %s", id, last, want.last, want.status)
		}
		if id == "r-shipped" && last.Detail != events.AttentionRefundedAfterShipment+": payment pay_r-shipped" {
			t.Errorf("%s: task detail %q", id, last.Detail)
		}
	}
	sameSnapshot(t, "live", e.snapshot(e.pg), e.fresh())
}
