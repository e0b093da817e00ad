package search_test

import (
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ordo-shop/ordo/aggregates/order"
	"github.com/ordo-shop/ordo/eventlog"
	"github.com/ordo-shop/ordo/events"
	"github.com/ordo-shop/ordo/internal/command"
	"github.com/ordo-shop/ordo/internal/testkit"
	"github.com/ordo-shop/ordo/projections"
	"github.com/ordo-shop/ordo/projections/search"
	"github.com/ordo-shop/ordo/streams"
)

// TestRefusedAndUndecodableCommitsAreQuarantined stores, among ordinary
// orders, a commit whose document Elasticsearch refuses (a SKU longer
// than a keyword term may be: 400) and bytes that are no commit under an
// order's subject: a catch-up sets both aside and indexes every other
// order; retry names them as still failing; ack makes them not open.
func TestRefusedAndUndecodableCommitsAreQuarantined(t *testing.T) {
	_, nc := testkit.NATS(t)
	e := newEnv(t, 2)
	var err error
	if e.log, err = testkit.OpenLog(e.ctx, nc, streams.Config{Partitions: 2}); err != nil {
		t.Fatal(err)
	}
	reg, err := events.Standard()
	if err != nil {
		t.Fatal(err)
	}
	if e.orders, err = command.NewHandler(order.Decider(), e.log, reg, command.Options{}); err != nil {
		t.Fatal(err)
	}
	e.st = e.open(e.esURL)
	e.place(0, 20, 4, nil)
	huge := strings.Repeat("X", 40000)
	ev, err := reg.Encode(events.OrderPlaced{
		OrderID: "ord-huge", CustomerID: "c-huge", Customer: events.Customer{Name: "Huge", Email: "h@example.com"},
		Lines: []events.OrderLine{{SKU: huge, Qty: 1, UnitPrice: events.Money{Amount: 1, Currency: "CNY"}, Amount: events.Money{Amount: 1, Currency: "CNY"}}},
		Total: events.Money{Amount: 1, Currency: "CNY"}, ShippingAddress: events.Address{Line1: "1 Road", City: "Town", Country: "CN"},
	})
	if err != nil {
		t.Fatal(err)
	}
	c := &events.Commit{CommitID: "huge-1", AggregateType: eventlog.TypeOrder, AggregateID: "ord-huge", Version: 1,
		Events: []events.Event{ev}, Metadata: events.Metadata{RecordedAt: time.Now().UTC()}}
	if err := c.Seal(""); err != nil {
		t.Fatal(err)
	}
	res, err := e.log.Append(e.ctx, c, 0)
	if err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	subj, err := e.log.Subject(eventlog.TypeOrder, orderID(3))
	if err != nil {
		t.Fatal(err)
	}
	ack, err := js.Publish(e.ctx, subj, []byte("not a commit"))
	if err != nil {
		t.Fatal(err)
	}
	// History written before text was checked: a NUL is indexed as it is.
	nul, err := reg.Encode(events.OrderPlaced{
		OrderID: "ord-nul", CustomerID: "c-nul", Customer: events.Customer{Name: "Zh\x00ang", Email: "z@example.com"},
		Lines: []events.OrderLine{{SKU: "TEA", Qty: 1, UnitPrice: events.Money{Amount: 1, Currency: "CNY"}, Amount: events.Money{Amount: 1, Currency: "CNY"}}},
		Total: events.Money{Amount: 1, Currency: "CNY"}, ShippingAddress: events.Address{Line1: "1 Road", City: "Town", Country: "CN"},
	})
	if err != nil {
		t.Fatal(err)
	}
	cn := &events.Commit{CommitID: "nul-1", AggregateType: eventlog.TypeOrder, AggregateID: "ord-nul", Version: 1,
		Events: []events.Event{nul}, Metadata: events.Metadata{RecordedAt: time.Now().UTC()}}
	if err := cn.Seal(""); err != nil {
		t.Fatal(err)
	}
	if _, err := e.log.Append(e.ctx, cn, 0); err != nil {
		t.Fatal(err)
	}
	e.place(20, 10, 2, nil)
	e.catchUp()

	q, err := e.st.Quarantined(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := map[uint64]string{}
	for _, x := range q {
		got[x.Seq] = x.AggregateID
		if x.State != projections.QuarantineOpen || x.Attempts != projections.MaxPoisonAttempts {
			t.Errorf("quarantined: %+v", x)
		}
	}
	if len(got) != 2 || got[res.Seq] != "ord-huge" || got[ack.Sequence] != orderID(3) {
		t.Fatalf("quarantined %+v, want seq %d of ord-huge and seq %d of %s", q, res.Seq, ack.Sequence, orderID(3))
	}
	docs, err := e.docs(e.st)
	if err != nil {
		t.Fatal(err)
	}
	if d, ok := docs["ord-nul"]; !ok || d.Customer.Name != "Zh\x00ang" {
		t.Errorf("the order with a NUL in its history: indexed %v, %+v", ok, d.Customer)
	}
	for i := range 30 {
		if _, ok := docs[orderID(i)]; !ok {
			t.Errorf("order %s is not indexed", orderID(i))
		}
	}
	if rec, err := e.st.Reconcile(e.ctx, e.log, search.ReconcileOptions{}); err != nil || len(rec.Drifts) != 0 || rec.Quarantined != 2 {
		t.Errorf("reconcile with a quarantine: %+v, %v", rec, err)
	}
	// A hit of the order says its document may be out of date.
	if err := e.st.Refresh(e.ctx); err != nil {
		t.Fatal(err)
	}
	hits := e.search(search.Query{Text: orderID(3)}).Hits
	if len(hits) == 0 || hits[0].OrderID != orderID(3) || !hits[0].Degraded {
		t.Errorf("search for the order with garbage under its subject: %+v", hits)
	}
	if hits := e.search(search.Query{Text: orderID(4)}).Hits; len(hits) == 0 || hits[0].Degraded {
		t.Errorf("search for a healthy order: %+v", hits)
	}
	out, err := e.st.Retry(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 2 || out[0].Resolved || out[1].Resolved {
		t.Errorf("retry of what cannot apply: %+v", out)
	}
	for seq := range got {
		if err := e.st.Acknowledge(e.ctx, seq, "test"); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.st.Acknowledge(e.ctx, 999999, ""); err == nil {
		t.Error("acknowledged a commit that is not quarantined")
	}
	q, err = e.st.Quarantined(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if open, acked := projections.CountQuarantine(q); open != 0 || acked != 2 {
		t.Errorf("after ack: %d open, %d acknowledged: %+v", open, acked, q)
	}
}
