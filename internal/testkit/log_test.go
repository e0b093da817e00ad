package testkit_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ordo-shop/ordo/aggregates/order"
	"github.com/ordo-shop/ordo/eventlog"
	"github.com/ordo-shop/ordo/events"
	"github.com/ordo-shop/ordo/internal/command"
	"github.com/ordo-shop/ordo/internal/testkit"
	"github.com/ordo-shop/ordo/streams"
)

// LegacyLog is a log from before identity and signing: Open takes it
// without an id, and Init adopts it with signing beginning at each
// commit stream's next sequence.
func TestLegacyLog(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a NATS server")
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	_, nc := testkit.NATS(t)
	store, err := testkit.LegacyLog(ctx, nc, streams.Config{Partitions: 4})
	if err != nil {
		t.Fatal(err)
	}
	if li := store.Log(); li.ID != "" || !li.Created.IsZero() || li.Partitions != 4 {
		t.Fatalf("legacy log: %+v", li)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range streams.LogStreams() {
		st, err := js.Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{streams.LogIDKey, streams.CreatedKey, streams.SignedFromKey} {
			if v, ok := st.CachedInfo().Config.Metadata[k]; ok {
				t.Errorf("%s: %s = %q in a legacy log", name, k, v)
			}
		}
	}
	if from, err := store.SignedFrom(ctx, eventlog.TypeOrder); err != nil || from != 0 {
		t.Fatalf("signed from of a legacy log: %d %v", from, err)
	}
	reg, err := events.Standard()
	if err != nil {
		t.Fatal(err)
	}
	h, err := command.NewHandler(order.Decider(), store, reg, command.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := testkit.RunOrder(ctx, h, "o-1", "cust-1", 1); err != nil { // six unsigned commits
		t.Fatal(err)
	}

	li, err := streams.Init(ctx, nc, streams.Config{})
	if err != nil || li.New || !li.Adopted || li.ID == "" || len(li.Added) != 0 {
		t.Fatalf("Init of a legacy log: %+v %v", li, err)
	}
	adopted, err := streams.Open(ctx, nc, streams.Config{LogID: li.ID})
	if err != nil {
		t.Fatal(err)
	}
	for typ, want := range map[string]uint64{eventlog.TypeOrder: 7, eventlog.TypeInventory: 1, eventlog.TypePayment: 1} {
		if from, err := adopted.SignedFrom(ctx, typ); err != nil || from != want {
			t.Errorf("%s: signed from %d (%v), want %d", typ, from, err, want)
		}
	}
	if _, err := testkit.LegacyLog(ctx, nc, streams.Config{}); err == nil {
		t.Fatal("LegacyLog on a server that holds a log")
	}
}
