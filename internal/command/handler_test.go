package command_test

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/ordo-shop/ordo/aggregates"
	"github.com/ordo-shop/ordo/aggregates/inventory"
	"github.com/ordo-shop/ordo/eventlog"
	"github.com/ordo-shop/ordo/events"
	"github.com/ordo-shop/ordo/internal/command"
	"github.com/ordo-shop/ordo/internal/testkit"
	"github.com/ordo-shop/ordo/streams"
)

// countingStore is the real store with counters around it, to observe how
// often the handler reads and how often it loses a race.
type countingStore struct {
	*streams.Store
	loads, appends, conflicts atomic.Int64
}

func (c *countingStore) Load(ctx context.Context, typ, id string, after uint64) ([]eventlog.Record, error) {
	c.loads.Add(1)
	return c.Store.Load(ctx, typ, id, after)
}

func (c *countingStore) Append(ctx context.Context, commit *events.Commit, expected uint64) (eventlog.AppendResult, error) {
	c.appends.Add(1)
	res, err := c.Store.Append(ctx, commit, expected)
	if errors.Is(err, eventlog.ErrConflict) {
		c.conflicts.Add(1)
	}
	return res, err
}

type fixture struct {
	nc    *nats.Conn
	store *streams.Store
	reg   *events.Registry
}

func newFixture(t *testing.T) fixture {
	t.Helper()
	_, nc := testkit.NATS(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	store, err := testkit.OpenLog(ctx, nc, streams.Config{})
	if err != nil {
		t.Fatal(err)
	}
	reg, err := events.Standard()
	if err != nil {
		t.Fatal(err)
	}
	return fixture{nc: nc, store: store, reg: reg}
}

func (f fixture) handler(t *testing.T, store command.Store) *command.Handler[inventory.State, inventory.Command] {
	t.Helper()
	h, err := command.NewHandler(inventory.Decider(), store, f.reg, command.Options{MaxAttempts: 50})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func define(t *testing.T, h *command.Handler[inventory.State, inventory.Command], sku string, onHand int64) {
	t.Helper()
	_, err := h.Handle(context.Background(), command.Request[inventory.Command]{
		AggregateID: sku,
		Command:     inventory.Define{Name: "Tea", Price: events.Money{Amount: 100, Currency: "CNY"}, OnHand: onHand},
	})
	if err != nil {
		t.Fatal(err)
	}
}

func restock(h *command.Handler[inventory.State, inventory.Command], sku string) error {
	_, err := h.Handle(context.Background(), command.Request[inventory.Command]{AggregateID: sku, Command: inventory.Restock{Qty: 1}})
	return err
}

func checkLog(t *testing.T, store *streams.Store, sku string, wantEvents int) {
	t.Helper()
	recs, err := store.Load(context.Background(), eventlog.TypeInventory, sku, 0)
	if err != nil {
		t.Fatal(err)
	}
	commits := make([]*events.Commit, len(recs))
	n := 0
	for i, r := range recs {
		commits[i] = r.Commit
		n += len(r.Commit.Events)
	}
	if breaks := events.VerifyChain(commits); len(breaks) > 0 {
		t.Fatalf("chain broken: %v", breaks)
	}
	if n != wantEvents {
		t.Fatalf("%d events in the log, want %d", n, wantEvents)
	}
}

// A hot aggregate inside one process queues instead of racing: no
// conflicts, and no reads after the first.
func TestHotAggregateIsSerialisedInProcess(t *testing.T) {
	f := newFixture(t)
	cs := &countingStore{Store: f.store}
	h := f.handler(t, cs)
	define(t, h, "HOT", 0)
	var wg sync.WaitGroup
	for range 64 {
		wg.Go(func() {
			if err := restock(h, "HOT"); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if c := cs.conflicts.Load(); c != 0 {
		t.Fatalf("%d conflicts inside one process", c)
	}
	if l := cs.loads.Load(); l != 1 {
		t.Fatalf("%d loads, want 1 (then the cache serves)", l)
	}
	res, err := h.State(context.Background(), "HOT")
	if err != nil {
		t.Fatal(err)
	}
	if res.State.OnHand != 64 {
		t.Fatalf("on hand %d, want 64", res.State.OnHand)
	}
	checkLog(t, f.store, "HOT", 1+64) // priced (no adjustment from 0 to 0), then 64 restocks
}

// Two instances (two handlers with their own caches) on one store race;
// conflicts are healed by reading only what the other wrote, nothing is
// lost or doubled.
func TestTwoInstancesRaceWithoutLosingWrites(t *testing.T) {
	f := newFixture(t)
	a, b := &countingStore{Store: f.store}, &countingStore{Store: f.store}
	ha, hb := f.handler(t, a), f.handler(t, b)
	define(t, ha, "SKU-1", 100)
	var wg sync.WaitGroup
	for i := range 40 {
		h := ha
		if i%2 == 1 {
			h = hb
		}
		wg.Go(func() {
			if err := restock(h, "SKU-1"); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	fresh := f.handler(t, f.store)
	res, err := fresh.State(context.Background(), "SKU-1")
	if err != nil {
		t.Fatal(err)
	}
	if res.State.OnHand != 140 {
		t.Fatalf("on hand %d, want 140", res.State.OnHand)
	}
	checkLog(t, f.store, "SKU-1", 2+40)
	t.Logf("conflicts healed: %d and %d", a.conflicts.Load(), b.conflicts.Load())
}

// A command retried with the same id takes effect once, whether the
// retry reaches the same instance or one that has never seen the
// aggregate.
func TestRetriedCommandTakesEffectOnce(t *testing.T) {
	f := newFixture(t)
	h := f.handler(t, f.store)
	define(t, h, "SKU-2", 0)
	req := command.Request[inventory.Command]{AggregateID: "SKU-2", CommandID: "restock-42", Command: inventory.Restock{Qty: 5}}
	first, err := h.Handle(context.Background(), req)
	if err != nil || first.Duplicate || len(first.Events) != 1 {
		t.Fatalf("first: %+v, %v", first, err)
	}
	for name, hh := range map[string]*command.Handler[inventory.State, inventory.Command]{"same instance": h, "other instance": f.handler(t, f.store)} {
		again, err := hh.Handle(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		if !again.Duplicate || len(again.Events) != 0 || again.Seq != first.Seq || again.State.OnHand != 5 {
			t.Fatalf("%s: retry = %+v", name, again)
		}
	}
	checkLog(t, f.store, "SKU-2", 2)
}

func TestDomainErrorsAndNoOpsWriteNothing(t *testing.T) {
	f := newFixture(t)
	h := f.handler(t, f.store)
	define(t, h, "SKU-3", 10)
	_, err := h.Handle(context.Background(), command.Request[inventory.Command]{AggregateID: "SKU-3", Command: inventory.Restock{Qty: -1}})
	if !errors.Is(err, inventory.ErrInvalidQuantity) {
		t.Fatalf("negative restock: %v", err)
	}
	res, err := h.Handle(context.Background(), command.Request[inventory.Command]{AggregateID: "SKU-3", Command: inventory.Release{OrderID: "nobody"}})
	if err != nil || len(res.Events) != 0 || res.Version != 2 {
		t.Fatalf("no-op release: %+v %v", res, err)
	}
	_, err = h.Handle(context.Background(), command.Request[inventory.Command]{AggregateID: "a.b", Command: inventory.Restock{Qty: 1}})
	if !errors.Is(err, eventlog.ErrInvalidID) {
		t.Fatalf("invalid id: %v", err)
	}
	_, err = h.Handle(context.Background(), command.Request[inventory.Command]{
		AggregateID: "SKU-3", Command: inventory.Restock{Qty: 1}, Metadata: events.Metadata{Actor: "admin:\x00"},
	})
	if !errors.Is(err, aggregates.ErrInvalidText) || !strings.Contains(err.Error(), "metadata.actor") {
		t.Fatalf("NUL in the actor: %v", err)
	}
	checkLog(t, f.store, "SKU-3", 2)
}

func BenchmarkHandleHotAggregate(b *testing.B) {
	_, nc := testkit.NATS(b)
	store, err := testkit.OpenLog(context.Background(), nc, streams.Config{})
	if err != nil {
		b.Fatal(err)
	}
	reg, _ := events.Standard()
	h, _ := command.NewHandler(inventory.Decider(), store, reg, command.Options{})
	_, _ = h.Handle(context.Background(), command.Request[inventory.Command]{AggregateID: "B", Command: inventory.Define{Name: "x", Price: events.Money{Amount: 1, Currency: "CNY"}, OnHand: 1}})
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := restock(h, "B"); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "commands/s")
}

// gatedStore holds every Append until the gate opens, to look at the
// handler while a command is in flight.
type gatedStore struct {
	*streams.Store
	entered chan struct{}
	gate    chan struct{}
}

func (g *gatedStore) Append(ctx context.Context, c *events.Commit, expected uint64) (eventlog.AppendResult, error) {
	g.entered <- struct{}{}
	<-g.gate
	return g.Store.Append(ctx, c, expected)
}

// Reading a cached state does not queue behind a command in flight on the
// same aggregate: a hot SKU's price stays readable during reservations.
func TestStateDoesNotWaitForCommandsInFlight(t *testing.T) {
	f := newFixture(t)
	define(t, f.handler(t, f.store), "SKU-4", 7)
	g := &gatedStore{Store: f.store, entered: make(chan struct{}), gate: make(chan struct{})}
	h := f.handler(t, g)
	if _, err := h.State(context.Background(), "SKU-4"); err != nil { // warm the cache
		t.Fatal(err)
	}
	done := make(chan error)
	go func() { done <- restock(h, "SKU-4") }()
	<-g.entered // the restock holds the aggregate's lock, inside Append
	res, err := h.State(context.Background(), "SKU-4")
	if err != nil || res.State.OnHand != 7 {
		t.Fatalf("state during the command: %+v, %v", res.State, err)
	}
	close(g.gate)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if res, _ := h.State(context.Background(), "SKU-4"); res.State.OnHand != 8 {
		t.Fatalf("state after the command: on hand %d, want 8", res.State.OnHand)
	}
}

// AssumeNew on an aggregate that does exist is decided again on its real
// state: the skipped read costs a conflict, never a wrong outcome.
func TestAssumeNewOnAnExistingAggregate(t *testing.T) {
	f := newFixture(t)
	define(t, f.handler(t, f.store), "SKU-5", 10)
	cs := &countingStore{Store: f.store}
	cold := f.handler(t, cs)
	res, err := cold.Handle(context.Background(), command.Request[inventory.Command]{
		AggregateID: "SKU-5", AssumeNew: true,
		Command: inventory.Define{Name: "Tea", Price: events.Money{Amount: 100, Currency: "CNY"}, OnHand: 4},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []events.Payload{events.InventoryStockAdjusted{SKU: "SKU-5", Delta: -6, OnHand: 4}}
	if !reflect.DeepEqual(res.Events, want) || res.Version != 3 {
		t.Fatalf("events %#v at version %d, want %#v at 3", res.Events, res.Version, want)
	}
	if c := cs.conflicts.Load(); c != 1 {
		t.Fatalf("%d conflicts, want the 1 that revealed the aggregate", c)
	}
	checkLog(t, f.store, "SKU-5", 3)

	// A new aggregate is created without reading the log at all.
	fresh := &countingStore{Store: f.store}
	h := f.handler(t, fresh)
	if _, err := h.Handle(context.Background(), command.Request[inventory.Command]{
		AggregateID: "SKU-6", AssumeNew: true,
		Command: inventory.Define{Name: "Cup", Price: events.Money{Amount: 500, Currency: "CNY"}, OnHand: 1},
	}); err != nil {
		t.Fatal(err)
	}
	if l := fresh.loads.Load(); l != 0 {
		t.Fatalf("%d loads for a new aggregate, want 0", l)
	}
}

// No command is decided on a history whose chain is broken.
func TestBrokenHistoryIsRefused(t *testing.T) {
	f := newFixture(t)
	define(t, f.handler(t, f.store), "SKU-7", 3)
	last, ok, err := f.store.Last(context.Background(), eventlog.TypeInventory, "SKU-7")
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	ev, err := f.reg.Encode(events.InventoryRestocked{SKU: "SKU-7", Qty: 1, OnHand: 4})
	if err != nil {
		t.Fatal(err)
	}
	forged := &events.Commit{CommitID: "forged", AggregateType: "inventory", AggregateID: "SKU-7", Version: 3,
		Events: []events.Event{ev}, Metadata: events.Metadata{RecordedAt: time.Now()}}
	if err := forged.Seal("not-the-previous-hash"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.Append(context.Background(), forged, last.Seq); err != nil {
		t.Fatal(err)
	}
	_, err = f.handler(t, f.store).Handle(context.Background(), command.Request[inventory.Command]{AggregateID: "SKU-7", Command: inventory.Restock{Qty: 1}})
	if !errors.Is(err, command.ErrCorruptHistory) {
		t.Fatalf("command on a broken chain: %v", err)
	}
}

// A refusal or no-op decided on a cached state that another instance has
// moved on from is decided again on the log's state: instance A must not
// skip releasing a reservation that only instance B saw being made.
func TestNoOpOnAStaleCacheIsDecidedAgain(t *testing.T) {
	f := newFixture(t)
	a, b := f.handler(t, f.store), f.handler(t, f.store)
	define(t, a, "SKU-8", 10) // a caches the SKU with nothing reserved
	if _, err := b.Handle(context.Background(), command.Request[inventory.Command]{AggregateID: "SKU-8", Command: inventory.Reserve{OrderID: "o-1", Qty: 8}}); err != nil {
		t.Fatal(err)
	}
	res, err := a.Handle(context.Background(), command.Request[inventory.Command]{AggregateID: "SKU-8", Command: inventory.Release{OrderID: "o-1"}})
	if err != nil {
		t.Fatal(err)
	}
	want := []events.Payload{events.InventoryReleased{SKU: "SKU-8", OrderID: "o-1", Qty: 8}}
	if !reflect.DeepEqual(res.Events, want) || res.State.Reserved != 0 {
		t.Fatalf("release on a stale cache: events %#v, reserved %d", res.Events, res.State.Reserved)
	}
}

// When the log already holds a command id, the handler takes the log's
// state, not the events it just decided on its own (possibly stale) state,
// so the next commit still extends the chain.
func TestDuplicateTrustsTheLog(t *testing.T) {
	f := newFixture(t)
	a, b := f.handler(t, f.store), f.handler(t, f.store)
	define(t, a, "SKU-9", 10)
	if _, err := b.State(context.Background(), "SKU-9"); err != nil { // b caches on hand 10
		t.Fatal(err)
	}
	if err := restock(a, "SKU-9"); err != nil { // b does not see this
		t.Fatal(err)
	}
	x := command.Request[inventory.Command]{AggregateID: "SKU-9", CommandID: "set-20",
		Command: inventory.Define{Name: "Tea", Price: events.Money{Amount: 100, Currency: "CNY"}, OnHand: 20}}
	if _, err := a.Handle(context.Background(), x); err != nil {
		t.Fatal(err)
	}
	res, err := b.Handle(context.Background(), x) // the same command, retried at b
	if err != nil {
		t.Fatal(err)
	}
	if !res.Duplicate || res.Version != 4 || res.State.OnHand != 20 {
		t.Fatalf("retry at b: duplicate %v, version %d, on hand %d; want true, 4, 20", res.Duplicate, res.Version, res.State.OnHand)
	}
	if err := restock(b, "SKU-9"); err != nil {
		t.Fatal(err)
	}
	checkLog(t, f.store, "SKU-9", 5)
}

// State answers from this instance's cache; Latest sees what another
// instance appended since.
func TestLatestSeesAnotherInstancesCommits(t *testing.T) {
	f := newFixture(t)
	ha, hb := f.handler(t, f.store), f.handler(t, f.store)
	define(t, ha, "SKU-1", 10)
	if err := restock(hb, "SKU-1"); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	cached, err := ha.State(ctx, "SKU-1")
	if err != nil {
		t.Fatal(err)
	}
	if cached.State.OnHand != 10 {
		t.Fatalf("cached on hand %d, want 10 (the state ha wrote)", cached.State.OnHand)
	}
	latest, err := ha.Latest(ctx, "SKU-1")
	if err != nil {
		t.Fatal(err)
	}
	if latest.State.OnHand != 11 || latest.Version != cached.Version+1 || latest.Seq <= cached.Seq {
		t.Fatalf("latest = on hand %d, version %d, seq %d; want 11, %d, > %d",
			latest.State.OnHand, latest.Version, latest.Seq, cached.Version+1, cached.Seq)
	}
	again, err := ha.State(ctx, "SKU-1")
	if err != nil {
		t.Fatal(err)
	}
	if again.State.OnHand != 11 {
		t.Fatalf("State after Latest: on hand %d, want 11 (the cache caught up)", again.State.OnHand)
	}
	unknown, err := ha.Latest(ctx, "SKU-none")
	if err != nil {
		t.Fatal(err)
	}
	if unknown.State.Exists || unknown.Version != 0 {
		t.Fatalf("unknown SKU: exists %v, version %d", unknown.State.Exists, unknown.Version)
	}
}
