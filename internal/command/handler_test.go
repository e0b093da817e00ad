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
	"github.com/ordo-shop/ordo/eventlog/memlog"
	"github.com/ordo-shop/ordo/events"
	"github.com/ordo-shop/ordo/internal/command"
	"github.com/ordo-shop/ordo/internal/testkit"
	"github.com/ordo-shop/ordo/streams"
)

// countingStore is the real store with counters around it, to observe how
// often the handler reads and how often it loses a race.
type countingStore struct {
	eventlog.Log
	loads, appends, conflicts atomic.Int64
}

func (c *countingStore) Load(ctx context.Context, typ, id string, after uint64) ([]eventlog.Record, error) {
	c.loads.Add(1)
	return c.Log.Load(ctx, typ, id, after)
}

func (c *countingStore) Append(ctx context.Context, commit *events.Commit, expected uint64) (eventlog.AppendResult, error) {
	c.appends.Add(1)
	res, err := c.Log.Append(ctx, commit, expected)
	if errors.Is(err, eventlog.ErrConflict) {
		c.conflicts.Add(1)
	}
	return res, err
}

// fixture is a log and the registry. The handler's tests run on the
// in-memory log and, unless -short, on JetStream (see each).
type fixture struct {
	nc    *nats.Conn // nil for the in-memory log
	store eventlog.Log
	js    *streams.Store // nil for the in-memory log
	reg   *events.Registry
}

// each runs a test on the in-memory log and, unless -short, on an
// in-process JetStream server: the handler must not tell them apart.
func each(t *testing.T, fn func(t *testing.T, f fixture)) {
	t.Run("memlog", func(t *testing.T) { fn(t, memFixture(t)) })
	t.Run("jetstream", func(t *testing.T) { fn(t, newFixture(t)) })
}

func memFixture(t *testing.T) fixture {
	t.Helper()
	log, err := memlog.New(memlog.Options{})
	if err != nil {
		t.Fatal(err)
	}
	reg, err := events.Standard()
	if err != nil {
		t.Fatal(err)
	}
	return fixture{store: log, reg: reg}
}

// newFixture is a fixture on an in-process JetStream server; it skips
// the test under -short, which starts no server.
func newFixture(t *testing.T) fixture {
	t.Helper()
	if testing.Short() {
		t.Skip("JetStream: not under -short")
	}
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
	return fixture{nc: nc, store: store, js: store, reg: reg}
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

func checkLog(t *testing.T, store eventlog.AggregateReader, sku string, wantEvents int) {
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
	each(t, func(t *testing.T, f fixture) {
		cs := &countingStore{Log: f.store}
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
		res, err := h.State(context.Background(), "HOT", command.Cached)
		if err != nil {
			t.Fatal(err)
		}
		if res.State.OnHand != 64 {
			t.Fatalf("on hand %d, want 64", res.State.OnHand)
		}
		checkLog(t, f.store, "HOT", 1+64) // priced (no adjustment from 0 to 0), then 64 restocks
	})
}

// Two instances (two handlers with their own caches) on one store race;
// conflicts are healed by reading only what the other wrote, nothing is
// lost or doubled.
func TestTwoInstancesRaceWithoutLosingWrites(t *testing.T) {
	each(t, func(t *testing.T, f fixture) {
		a, b := &countingStore{Log: f.store}, &countingStore{Log: f.store}
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
		res, err := fresh.State(context.Background(), "SKU-1", command.Cached)
		if err != nil {
			t.Fatal(err)
		}
		if res.State.OnHand != 140 {
			t.Fatalf("on hand %d, want 140", res.State.OnHand)
		}
		checkLog(t, f.store, "SKU-1", 2+40)
		t.Logf("conflicts healed: %d and %d", a.conflicts.Load(), b.conflicts.Load())
	})
}

// A command retried with the same id takes effect once, whether the
// retry reaches the same instance or one that has never seen the
// aggregate.
func TestRetriedCommandTakesEffectOnce(t *testing.T) {
	each(t, func(t *testing.T, f fixture) {
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
	})
}

func TestDomainErrorsAndNoOpsWriteNothing(t *testing.T) {
	each(t, func(t *testing.T, f fixture) {
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
	})
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
	eventlog.Log
	entered chan struct{}
	gate    chan struct{}
}

func (g *gatedStore) Append(ctx context.Context, c *events.Commit, expected uint64) (eventlog.AppendResult, error) {
	g.entered <- struct{}{}
	<-g.gate
	return g.Log.Append(ctx, c, expected)
}

// Reading a cached state does not queue behind a command in flight on the
// same aggregate: a hot SKU's price stays readable during reservations.
func TestStateDoesNotWaitForCommandsInFlight(t *testing.T) {
	each(t, func(t *testing.T, f fixture) {
		define(t, f.handler(t, f.store), "SKU-4", 7)
		g := &gatedStore{Log: f.store, entered: make(chan struct{}), gate: make(chan struct{})}
		h := f.handler(t, g)
		if _, err := h.State(context.Background(), "SKU-4", command.Cached); err != nil { // warm the cache
			t.Fatal(err)
		}
		done := make(chan error)
		go func() { done <- restock(h, "SKU-4") }()
		<-g.entered // the restock holds the aggregate's lock, inside Append
		res, err := h.State(context.Background(), "SKU-4", command.Cached)
		if err != nil || res.State.OnHand != 7 {
			t.Fatalf("state during the command: %+v, %v", res.State, err)
		}
		close(g.gate)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if res, _ := h.State(context.Background(), "SKU-4", command.Cached); res.State.OnHand != 8 {
			t.Fatalf("state after the command: on hand %d, want 8", res.State.OnHand)
		}
	})
}

// AssumeNew on an aggregate that does exist is decided again on its real
// state: the skipped read costs a conflict, never a wrong outcome.
func TestAssumeNewOnAnExistingAggregate(t *testing.T) {
	each(t, func(t *testing.T, f fixture) {
		define(t, f.handler(t, f.store), "SKU-5", 10)
		cs := &countingStore{Log: f.store}
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
		fresh := &countingStore{Log: f.store}
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
	})
}

// No command is decided on a history whose chain is broken.
func TestBrokenHistoryIsRefused(t *testing.T) {
	each(t, func(t *testing.T, f fixture) {
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
	})
}

// A refusal or no-op decided on a cached state that another instance has
// moved on from is decided again on the log's state: instance A must not
// skip releasing a reservation that only instance B saw being made.
func TestNoOpOnAStaleCacheIsDecidedAgain(t *testing.T) {
	each(t, func(t *testing.T, f fixture) {
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
	})
}

// When the log already holds a command id, the handler takes the log's
// state, not the events it just decided on its own (possibly stale) state,
// so the next commit still extends the chain.
func TestDuplicateTrustsTheLog(t *testing.T) {
	each(t, func(t *testing.T, f fixture) {
		a, b := f.handler(t, f.store), f.handler(t, f.store)
		define(t, a, "SKU-9", 10)
		if _, err := b.State(context.Background(), "SKU-9", command.Cached); err != nil { // b caches on hand 10
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
	})
}

// leaderBehind is the log as a stream leader shows it that has not yet
// applied the commits after upTo (0: it has them all), while a consumer
// on a replica that applied them may already have delivered them.
type leaderBehind struct {
	eventlog.Log
	upTo atomic.Uint64
}

func (l *leaderBehind) Load(ctx context.Context, typ, id string, after uint64) ([]eventlog.Record, error) {
	recs, err := l.Log.Load(ctx, typ, id, after)
	up := l.upTo.Load()
	if err != nil || up == 0 {
		return recs, err
	}
	var shown []eventlog.Record
	for _, r := range recs {
		if r.Seq <= up {
			shown = append(shown, r)
		}
	}
	return shown, nil
}

func (l *leaderBehind) Last(ctx context.Context, typ, id string) (eventlog.Record, bool, error) {
	if l.upTo.Load() == 0 {
		return l.Log.Last(ctx, typ, id)
	}
	recs, err := l.Load(ctx, typ, id, 0)
	if err != nil || len(recs) == 0 {
		return eventlog.Record{}, false, err
	}
	return recs[len(recs)-1], true, nil
}

// A state that Includes a commit the log delivered before its leader
// shows it is never answered without that commit: State returns
// ErrNotYetReadable until the leader has it, whether the handler had
// the aggregate cached or not. (On a three-node cluster the checkout
// read a payment without its capture while handling payment.captured,
// took it for "moved on" and left the order waiting for its payment.)
func TestIncludesNeverAnswersWithoutTheCommit(t *testing.T) {
	each(t, func(t *testing.T, f fixture) {
		ctx := context.Background()
		lag := &leaderBehind{Log: f.store}
		other, this := f.handler(t, f.store), f.handler(t, lag)
		define(t, other, "SKU-1", 10)
		known, err := this.State(ctx, "SKU-1", command.Cached)
		if err != nil {
			t.Fatal(err)
		}
		if err := restock(other, "SKU-1"); err != nil {
			t.Fatal(err)
		}
		delivered, err := other.State(ctx, "SKU-1", command.Cached)
		if err != nil {
			t.Fatal(err)
		}
		lag.upTo.Store(known.Seq)
		for name, h := range map[string]*command.Handler[inventory.State, inventory.Command]{
			"cached": this, "not cached": f.handler(t, lag),
		} {
			if res, err := h.State(ctx, "SKU-1", command.Includes(delivered.Seq)); !errors.Is(err, command.ErrNotYetReadable) {
				t.Fatalf("%s, leader behind: on hand %d at seq %d, %v; want ErrNotYetReadable", name, res.State.OnHand, res.Seq, err)
			}
		}
		lag.upTo.Store(0)
		res, err := this.State(ctx, "SKU-1", command.Includes(delivered.Seq))
		if err != nil || res.State.OnHand != 11 || res.Seq != delivered.Seq {
			t.Fatalf("leader caught up: on hand %d at seq %d, %v; want 11 at %d", res.State.OnHand, res.Seq, err, delivered.Seq)
		}
	})
}

// The three freshness levels of State: Cached answers from this
// instance's cache; Current and Includes see what another instance
// appended since.
func TestStateFreshness(t *testing.T) {
	each(t, func(t *testing.T, f fixture) {
		ha, hb := f.handler(t, f.store), f.handler(t, f.store)
		define(t, ha, "SKU-1", 10)
		ctx := context.Background()
		cached, err := ha.State(ctx, "SKU-1", command.Cached)
		if err != nil {
			t.Fatal(err)
		}
		if cached.State.OnHand != 10 {
			t.Fatalf("cached on hand %d, want 10 (the state ha wrote)", cached.State.OnHand)
		}
		if err := restock(hb, "SKU-1"); err != nil {
			t.Fatal(err)
		}
		if res, err := ha.State(ctx, "SKU-1", command.Cached); err != nil || res.State.OnHand != 10 {
			t.Fatalf("cached after another instance's restock: on hand %d, %v; want 10 (ha's cache)", res.State.OnHand, err)
		}
		// Includes a sequence the cache already has: the cache answers.
		if res, err := ha.State(ctx, "SKU-1", command.Includes(cached.Seq)); err != nil || res.State.OnHand != 10 {
			t.Fatalf("includes seq %d: on hand %d, %v; want 10", cached.Seq, res.State.OnHand, err)
		}
		current, err := ha.State(ctx, "SKU-1", command.Current)
		if err != nil {
			t.Fatal(err)
		}
		if current.State.OnHand != 11 || current.Version != cached.Version+1 || current.Seq <= cached.Seq {
			t.Fatalf("current = on hand %d, version %d, seq %d; want 11, %d, > %d",
				current.State.OnHand, current.Version, current.Seq, cached.Version+1, cached.Seq)
		}
		again, err := ha.State(ctx, "SKU-1", command.Cached)
		if err != nil {
			t.Fatal(err)
		}
		if again.State.OnHand != 11 {
			t.Fatalf("cached after current: on hand %d, want 11 (the cache caught up)", again.State.OnHand)
		}
		unknown, err := ha.State(ctx, "SKU-none", command.Current)
		if err != nil {
			t.Fatal(err)
		}
		if unknown.State.Exists || unknown.Version != 0 {
			t.Fatalf("unknown SKU: exists %v, version %d", unknown.State.Exists, unknown.Version)
		}

		// Includes: another instance restocks again; a process manager
		// handling that commit on ha reads a state that has it.
		if err := restock(hb, "SKU-1"); err != nil {
			t.Fatal(err)
		}
		byB, err := hb.State(ctx, "SKU-1", command.Cached)
		if err != nil {
			t.Fatal(err)
		}
		at, err := ha.State(ctx, "SKU-1", command.Includes(byB.Seq))
		if err != nil {
			t.Fatal(err)
		}
		if at.State.OnHand != 12 || at.Seq != byB.Seq {
			t.Fatalf("includes seq %d: on hand %d at seq %d; want 12 at %d", byB.Seq, at.State.OnHand, at.Seq, byB.Seq)
		}
	})
}
