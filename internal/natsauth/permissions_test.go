package natsauth_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ordo-shop/ordo/eventlog"
	"github.com/ordo-shop/ordo/eventlog/logtest"
	"github.com/ordo-shop/ordo/events"
	"github.com/ordo-shop/ordo/internal/local/natsembed"
	"github.com/ordo-shop/ordo/internal/natsauth"
	"github.com/ordo-shop/ordo/internal/testkit"
	"github.com/ordo-shop/ordo/streams"
)

// startServer starts an embedded server that admits Ordo's three users,
// listening on loopback, with the log provisioned by the admin as orderd
// provisions a new one.
func startServer(t *testing.T) (*server.Server, *natsauth.Keys) {
	t.Helper()
	keys, err := natsauth.NewKeys()
	if err != nil {
		t.Fatal(err)
	}
	s, err := natsembed.Start(natsembed.Options{StoreDir: t.TempDir(), Listen: "127.0.0.1:0", Users: keys.Users()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	admin := connect(t, s, keys, natsauth.Admin)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if _, err := streams.Init(ctx, admin.Conn, streams.Config{}); err != nil {
		t.Fatal(err)
	}
	return s, keys
}

func connect(t *testing.T, s *server.Server, keys *natsauth.Keys, r natsauth.Role) *testkit.NATSClient {
	t.Helper()
	return testkit.ConnectNATS(t, s.ClientURL(), keys.Option(r))
}

func TestClientsWithoutCredentialsAreRefused(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a NATS server")
	}
	s, _ := startServer(t)
	stranger, err := natsauth.NewKeys()
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]func() (*nats.Conn, error){
		"no credentials over TCP":        func() (*nats.Conn, error) { return nats.Connect(s.ClientURL()) },
		"no credentials in process":      func() (*nats.Conn, error) { return natsembed.Connect(s) },
		"a user and password":            func() (*nats.Conn, error) { return nats.Connect(s.ClientURL(), nats.UserInfo("admin", "admin")) },
		"a key the server does not know": func() (*nats.Conn, error) { return nats.Connect(s.ClientURL(), stranger.Option(natsauth.Admin)) },
		"a key in process it does not know": func() (*nats.Conn, error) {
			return natsembed.Connect(s, stranger.Option(natsauth.Service))
		},
	}
	// A refused in-process connection takes the server's write deadline
	// (natsembed.Connect): try them all at once.
	var wg sync.WaitGroup
	for name, connect := range cases {
		wg.Go(func() {
			nc, err := connect()
			if err == nil {
				nc.Close()
				t.Errorf("%s: connected", name)
				return
			}
			if !natsauth.Refused(err) {
				t.Errorf("%s: %v, want an authorization violation", name, err)
			}
		})
	}
	wg.Wait()
}

// The auditor reads everything orderctl reads, and can change nothing.
func TestAuditorReadsAndCannotWrite(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a NATS server")
	}
	s, keys := startServer(t)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	svc := connect(t, s, keys, natsauth.Service)
	svcStore, err := streams.Open(ctx, svc.Conn, streams.Config{})
	if err != nil {
		t.Fatal(err)
	}
	c := sealed(t, eventlog.TypeOrder, "ord-1", 1, "")
	if _, err := svcStore.Append(ctx, c, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := svcStore.AddDeadLetter(ctx, streams.DeadLetter{Owner: "checkout", Handler: "h", Stream: "ORDERS", Seq: 1, Data: []byte("{}")}, ""); err != nil {
		t.Fatal(err)
	}

	aud := connect(t, s, keys, natsauth.Auditor)
	store, err := streams.Open(ctx, aud.Conn, streams.Config{})
	if err != nil {
		t.Fatalf("open as auditor: %v", err)
	}
	if recs, err := store.Load(ctx, eventlog.TypeOrder, "ord-1", 0); err != nil || len(recs) != 1 {
		t.Fatalf("load as auditor: %d records, %v", len(recs), err)
	}
	if _, ok, err := store.Last(ctx, eventlog.TypeOrder, "ord-1"); err != nil || !ok {
		t.Fatalf("last as auditor: %v %v", ok, err)
	}
	n := 0
	if err := store.ReplayRaw(ctx, eventlog.TypeOrder, 0, func(eventlog.StoredMsg) error { n++; return nil }); err != nil || n != 1 {
		t.Fatalf("replay as auditor: %d, %v", n, err)
	}
	if recs, err := store.FetchRaw(ctx, eventlog.TypeOrder, 1, 10); err != nil || len(recs) != 1 {
		t.Fatalf("fetch as auditor: %d, %v", len(recs), err)
	}
	if ids, err := store.ListIDs(ctx, eventlog.TypeOrder); err != nil || len(ids) != 1 {
		t.Fatalf("list ids as auditor: %v %v", ids, err)
	}
	if _, err := store.MessageAt(ctx, eventlog.TypeOrder, 1); err != nil {
		t.Fatalf("message at as auditor: %v", err)
	}
	if _, err := store.Identity(ctx, eventlog.TypeOrder); err != nil {
		t.Fatalf("identity as auditor: %v", err)
	}
	if dls, err := store.DeadLetters(ctx); err != nil || len(dls) != 1 {
		t.Fatalf("dead letters as auditor: %v %v", dls, err)
	}
	if _, err := store.RefusedReports(ctx); err != nil {
		t.Fatalf("refused reports as auditor: %v", err)
	}

	js, err := jetstream.New(aud.Conn)
	if err != nil {
		t.Fatal(err)
	}
	aud.Refused(t, "publish a commit", aud.PublishOp("order.1.x", []byte("forged")))
	aud.Refused(t, "append through the store", func(ctx context.Context) error {
		_, err := store.Append(ctx, sealed(t, eventlog.TypeOrder, "ord-2", 1, ""), 0)
		return err
	})
	aud.Refused(t, "publish a redrive", aud.PublishOp("dlq.redrive.checkout", []byte("forged")))
	aud.Refused(t, "publish a timer", aud.PublishOp("timer.sched.checkout.payment_timeout.x", []byte("forged")))
	aud.Refused(t, "publish a fired timer", aud.PublishOp("timer.fire.checkout.payment_timeout.x", []byte("forged")))
	aud.Refused(t, "subscribe to commits", func(context.Context) error {
		sub, err := aud.SubscribeSync("order.>")
		if err != nil {
			return err
		}
		defer sub.Unsubscribe()
		return aud.Flush()
	})
	aud.RefusesStreamChanges(t)
	aud.Refused(t, "take over the checkout's consumer", func(ctx context.Context) error {
		_, err := js.CreateOrUpdateConsumer(ctx, "ORDERS", jetstream.ConsumerConfig{Durable: "checkout-orders", FilterSubject: "order.0.none"})
		return err
	})
	aud.Refused(t, "delete the checkout's consumer", func(ctx context.Context) error {
		return js.DeleteConsumer(ctx, "ORDERS", "checkout-timers")
	})
	aud.Refused(t, "delete a dead letter", func(ctx context.Context) error { return store.DeleteDeadLetter(ctx, 1) })
	unchanged(t, svc.Conn, 1)
}

// The service appends and runs its consumers, and cannot destroy or
// shrink the log.
func TestServiceAppendsAndCannotDestroy(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a NATS server")
	}
	s, keys := startServer(t)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	svc := connect(t, s, keys, natsauth.Service)
	store, err := streams.Open(ctx, svc.Conn, streams.Config{})
	if err != nil {
		t.Fatal(err)
	}
	logtest.Run(t, func(*testing.T) eventlog.Log { return store })
	for _, typ := range []string{eventlog.TypeInventory, eventlog.TypePayment} {
		if _, err := store.Append(ctx, sealed(t, typ, "x-1", 1, ""), 0); err != nil {
			t.Fatalf("append %s: %v", typ, err)
		}
	}
	// Everything the process managers do at run time.
	if err := store.OpenDLQ(ctx); err != nil {
		t.Fatal(err)
	}
	if err := store.OpenTimers(ctx); err != nil {
		t.Fatal(err)
	}
	id, err := store.AddDeadLetter(ctx, streams.DeadLetter{Owner: "checkout", Handler: "h", Data: []byte("{}")}, "dl-1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.AddRefusedReport(ctx, eventlog.RefusedReport{Source: "psp", Cause: "c", Report: []byte("{}"), Reason: "r"}); err != nil {
		t.Fatal(err)
	}
	if err := store.DeleteDeadLetter(ctx, id); err != nil {
		t.Fatalf("delete a handled dead letter: %v", err)
	}
	if err := store.ScheduleTimer(ctx, eventlog.Timer{Owner: "checkout", Kind: "k", Key: "x", At: time.Now(), Data: []byte("due")}); err != nil {
		t.Fatal(err)
	}
	opts := streams.ConsumerOptions{Durable: "checkout-timers"}
	cons, err := store.TimerConsumer(ctx, "checkout", opts)
	if err != nil {
		t.Fatal(err)
	}
	m, err := cons.Next(jetstream.FetchMaxWait(30 * time.Second))
	if err != nil {
		t.Fatalf("fired timer: %v", err)
	}
	if err := m.DoubleAck(ctx); err != nil {
		t.Fatalf("ack a fired timer: %v", err)
	}
	if _, err := store.DurableConsumer(ctx, eventlog.TypeOrder, streams.ConsumerOptions{Durable: "checkout-orders"}); err != nil {
		t.Fatal(err)
	}
	// The same durable as a runtime from before pinning made it, now
	// pinned to one runtime at a time, which hands it over when it closes.
	pinned, err := store.DurableConsumer(ctx, eventlog.TypeOrder, streams.ConsumerOptions{Durable: "checkout-orders", PinnedGroup: "runtime"})
	if err != nil {
		t.Fatalf("pin an existing durable: %v", err)
	}
	if _, err := pinned.Next(jetstream.FetchMaxWait(30*time.Second), jetstream.FetchPriorityGroup("runtime")); err != nil {
		t.Fatalf("pull as the pinned runtime: %v", err)
	}
	if err := store.UnpinConsumer(ctx, "ORDERS", "checkout-orders", "runtime"); err != nil {
		t.Fatalf("hand the pinned durable over: %v", err)
	}
	if _, err := store.DurableConsumer(ctx, eventlog.TypeOrder, streams.ConsumerOptions{Durable: "checkout-orders-urgent", PinnedGroup: "runtime", DeliverNew: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := store.RedriveConsumer(ctx, "checkout", streams.ConsumerOptions{Durable: "checkout-redrive"}); err != nil {
		t.Fatal(err)
	}

	svc.RefusesStreamChanges(t)
	svc.Refused(t, "redrive a dead letter", svc.PublishOp("dlq.redrive.checkout", []byte("forged")))
	svc.Refused(t, "publish a fired timer", svc.PublishOp("timer.fire.checkout.k.y", []byte("forged")))
	svc.Refused(t, "publish outside Ordo's subjects", svc.PublishOp("other.subject", []byte("forged")))
	svc.Refused(t, "subscribe to commits", func(context.Context) error {
		sub, err := svc.SubscribeSync("order.>")
		if err != nil {
			return err
		}
		defer sub.Unsubscribe()
		return svc.Flush()
	})
}

// unchanged checks that ORDERS still holds n commits.
func unchanged(t *testing.T, nc *nats.Conn, n uint64) {
	t.Helper()
	js, _ := jetstream.New(nc)
	st, err := js.Stream(t.Context(), "ORDERS")
	if err != nil || st.CachedInfo().State.Msgs != n {
		t.Fatalf("ORDERS: %v, want %d messages", err, n)
	}
}

func TestAdminManagesStreams(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a NATS server")
	}
	s, keys := startServer(t)
	admin := connect(t, s, keys, natsauth.Admin)
	js, _ := jetstream.New(admin.Conn)
	ctx := t.Context()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "SCRATCH", Subjects: []string{"scratch.>"}}); err != nil {
		t.Fatal(err)
	}
	if err := js.DeleteStream(ctx, "SCRATCH"); err != nil {
		t.Fatal(err)
	}
}

// sealed is a valid first or later commit of one test event.
func sealed(t *testing.T, typ, id string, version uint64, prev string) *events.Commit {
	t.Helper()
	c := &events.Commit{
		CommitID: typ + "-" + id + "-" + strings.Repeat("v", int(version)), AggregateType: typ, AggregateID: id, Version: version,
		Metadata: events.Metadata{Actor: "test", CorrelationID: "corr", RecordedAt: time.Now().UTC()},
		Events:   []events.Event{{Type: "test.happened", SchemaVersion: 1, Data: []byte(`{}`)}},
	}
	if err := c.Seal(prev); err != nil {
		t.Fatal(err)
	}
	return c
}
