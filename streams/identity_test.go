package streams_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ordo-shop/ordo/eventlog"
	"github.com/ordo-shop/ordo/internal/testkit"
	"github.com/ordo-shop/ordo/streams"
)

var commitStreams = []string{"ORDERS", "INVENTORY", "PAYMENTS"}

// Init on an empty server creates the five streams of a log, each with
// the log's id; the commit streams must be signed from their first
// sequence.
func TestInitCreatesALogWithIdentity(t *testing.T) {
	_, nc := testkit.LogNATS(t)
	ctx := testCtx(t)
	li, err := streams.Init(ctx, nc, streams.Config{Partitions: 4})
	if err != nil {
		t.Fatal(err)
	}
	if !li.New || li.Adopted || len(li.ID) != 32 || li.Partitions != 4 || li.Replicas != 1 || li.Created.IsZero() {
		t.Fatalf("Init on an empty server: %+v", li)
	}
	js := jsOf(t, nc)
	for _, name := range streams.LogStreams() {
		st, err := js.Stream(ctx, name)
		if err != nil {
			t.Fatalf("stream %s after Init: %v", name, err)
		}
		md := st.CachedInfo().Config.Metadata
		if md[streams.LogIDKey] != li.ID || md[streams.CreatedKey] != li.Created.Format(time.RFC3339) {
			t.Errorf("%s metadata %v, want log id %s created %s", name, md, li.ID, li.Created)
		}
		isCommit := name != streams.DLQStream && name != streams.TimersStream
		if got := md[streams.SignedFromKey]; isCommit && got != "1" || !isCommit && got != "" {
			t.Errorf("%s: %s = %q", name, streams.SignedFromKey, got)
		}
	}
	s, err := streams.Open(ctx, nc, streams.Config{LogID: li.ID})
	if err != nil {
		t.Fatal(err)
	}
	if s.Log().ID != li.ID || s.Partitions() != 4 {
		t.Fatalf("opened log %+v, want %s with 4 partitions", s.Log(), li.ID)
	}
	if err := s.OpenDLQ(ctx); err != nil {
		t.Error(err)
	}
	if err := s.OpenTimers(ctx); err != nil {
		t.Error(err)
	}
	if err := s.CheckLog(ctx); err != nil {
		t.Error(err)
	}

	// Again: nothing changes.
	again, err := streams.Init(ctx, nc, streams.Config{Partitions: 16})
	if err != nil {
		t.Fatal(err)
	}
	if again.New || again.Adopted || len(again.Added) > 0 || again.ID != li.ID || again.Partitions != 4 || !again.Created.Equal(li.Created) {
		t.Fatalf("Init on an existing log: %+v, want it unchanged (%+v)", again, li)
	}
}

func TestOpenWithoutALog(t *testing.T) {
	_, nc := testkit.LogNATS(t)
	ctx := testCtx(t)
	_, err := streams.Open(ctx, nc, streams.Config{})
	if !errors.Is(err, eventlog.ErrNoLog) || !strings.Contains(err.Error(), "orderctl init") {
		t.Fatalf("Open on an empty server: %v, want ErrNoLog naming orderctl init", err)
	}
	if names := streamNames(t, nc); len(names) > 0 {
		t.Fatalf("Open created %v", names)
	}
	// Init told which log to expect creates none either.
	if _, err := streams.Init(ctx, nc, streams.Config{LogID: "0123456789abcdef0123456789abcdef"}); !errors.Is(err, eventlog.ErrNoLog) {
		t.Fatalf("Init expecting a log on an empty server: %v, want ErrNoLog", err)
	}
	if names := streamNames(t, nc); len(names) > 0 {
		t.Fatalf("Init expecting a log created %v", names)
	}
}

func streamNames(t *testing.T, nc *nats.Conn) []string {
	t.Helper()
	var out []string
	names := jsOf(t, nc).StreamNames(testCtx(t))
	for n := range names.Name() {
		out = append(out, n)
	}
	if err := names.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// Whatever streams of a log are deleted, Open and Init refuse it and
// create nothing in their place.
func TestDestroyedLogIsRefused(t *testing.T) {
	for _, tc := range []struct {
		name    string
		deleted []string
		noLog   bool // every stream gone: nothing tells a log was there
	}{
		{"one commit stream", []string{"PAYMENTS"}, false},
		{"every commit stream", commitStreams, false},
		{"the dead letters", []string{streams.DLQStream}, false},
		{"the timers", []string{streams.TimersStream}, false},
		{"everything", streams.LogStreams(), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, nc := testkit.LogNATS(t)
			ctx := testCtx(t)
			li, err := streams.Init(ctx, nc, streams.Config{})
			if err != nil {
				t.Fatal(err)
			}
			s, err := streams.Open(ctx, nc, streams.Config{})
			if err != nil {
				t.Fatal(err)
			}
			js := jsOf(t, nc)
			for _, n := range tc.deleted {
				if err := js.DeleteStream(ctx, n); err != nil {
					t.Fatal(err)
				}
			}
			want := eventlog.ErrStreamMissing
			if tc.noLog {
				want = eventlog.ErrNoLog
			}
			_, err = streams.Open(ctx, nc, streams.Config{})
			if !errors.Is(err, want) || !tc.noLog && !strings.Contains(err.Error(), tc.deleted[0]) {
				t.Fatalf("Open: %v, want %v naming %s", err, want, tc.deleted[0])
			}
			// Told which log to expect, Open says that one is gone.
			_, err = streams.Open(ctx, nc, streams.Config{LogID: li.ID})
			if !errors.Is(err, want) || !strings.Contains(err.Error(), li.ID) {
				t.Fatalf("Open expecting %s: %v, want %v naming the log", li.ID, err, want)
			}
			if _, err := streams.Init(ctx, nc, streams.Config{LogID: li.ID}); !errors.Is(err, want) {
				t.Fatalf("Init expecting the log: %v, want %v", err, want)
			}
			if !tc.noLog {
				if _, err := streams.Init(ctx, nc, streams.Config{}); !errors.Is(err, eventlog.ErrStreamMissing) {
					t.Fatalf("Init: %v, want ErrStreamMissing", err)
				}
			}
			if err := s.CheckLog(ctx); !errors.Is(err, eventlog.ErrStreamMissing) || !strings.Contains(err.Error(), tc.deleted[0]) {
				t.Fatalf("CheckLog of the open store: %v, want ErrStreamMissing naming %s", err, tc.deleted[0])
			}
			for _, n := range tc.deleted {
				if _, err := js.Stream(ctx, n); !errors.Is(err, jetstream.ErrStreamNotFound) {
					t.Fatalf("%s after the refusals: %v, want still missing", n, err)
				}
			}
		})
	}
}

// A lost DLQ or TIMERS is recreated only when the operator says so.
func TestInitRecreatesLostAuxStreamsOnlyWhenTold(t *testing.T) {
	_, nc := testkit.LogNATS(t)
	ctx := testCtx(t)
	li, err := streams.Init(ctx, nc, streams.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := jsOf(t, nc).DeleteStream(ctx, streams.DLQStream); err != nil {
		t.Fatal(err)
	}
	_, err = streams.Init(ctx, nc, streams.Config{})
	if !errors.Is(err, eventlog.ErrStreamMissing) || !strings.Contains(err.Error(), "--recreate-lost") {
		t.Fatalf("Init without DLQ: %v, want ErrStreamMissing naming --recreate-lost", err)
	}
	got, err := streams.Init(ctx, nc, streams.Config{RecreateLost: true})
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != li.ID || len(got.Added) != 1 || got.Added[0] != streams.DLQStream {
		t.Fatalf("Init --recreate-lost: %+v", got)
	}
	s, err := streams.Open(ctx, nc, streams.Config{LogID: li.ID})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.OpenDLQ(ctx); err != nil {
		t.Fatal(err)
	}
}

// Streams that are another log's, or not one log's, are refused.
func TestLogIDMismatch(t *testing.T) {
	_, nc := testkit.LogNATS(t)
	ctx := testCtx(t)
	li, err := streams.Init(ctx, nc, streams.Config{})
	if err != nil {
		t.Fatal(err)
	}
	other := "ffffffffffffffffffffffffffffffff"
	if _, err := streams.Open(ctx, nc, streams.Config{LogID: other}); !errors.Is(err, eventlog.ErrLogMismatch) ||
		!strings.Contains(err.Error(), other) || !strings.Contains(err.Error(), li.ID) {
		t.Fatalf("Open expecting another log: %v, want ErrLogMismatch naming both ids", err)
	}
	if _, err := streams.Init(ctx, nc, streams.Config{LogID: other}); !errors.Is(err, eventlog.ErrLogMismatch) {
		t.Fatalf("Init expecting another log: %v, want ErrLogMismatch", err)
	}
	// One stream relabelled as another log's.
	setMetadata(t, nc, "INVENTORY", streams.LogIDKey, other)
	for name, call := range map[string]func() error{
		"Open": func() error { _, err := streams.Open(ctx, nc, streams.Config{}); return err },
		"Init": func() error { _, err := streams.Init(ctx, nc, streams.Config{}); return err },
	} {
		if err := call(); !errors.Is(err, eventlog.ErrLogMismatch) || !strings.Contains(err.Error(), other) {
			t.Errorf("%s over streams of two logs: %v, want ErrLogMismatch", name, err)
		}
	}
}

func setMetadata(t *testing.T, nc *nats.Conn, stream, key, value string) {
	t.Helper()
	js := jsOf(t, nc)
	st, err := js.Stream(testCtx(t), stream)
	if err != nil {
		t.Fatal(err)
	}
	sc := st.CachedInfo().Config
	if value == "" {
		delete(sc.Metadata, key)
	} else {
		sc.Metadata[key] = value
	}
	if _, err := js.UpdateStream(testCtx(t), sc); err != nil {
		t.Fatal(err)
	}
}

// A log made before logs had ids (the three commit streams, DLQ and
// TIMERS made later by the process managers, if at all) still opens, and
// Init adopts it: an id in every stream, signatures required from the
// next commit on, the missing DLQ and TIMERS added.
func TestInitAdoptsALogWithoutIdentity(t *testing.T) {
	_, nc := testkit.LogNATS(t)
	ctx := testCtx(t)
	js := jsOf(t, nc)
	for _, name := range commitStreams {
		prefix := map[string]string{"ORDERS": "order", "INVENTORY": "sku", "PAYMENTS": "payment"}[name]
		_, err := js.CreateStream(ctx, jetstream.StreamConfig{
			Name: name, Subjects: []string{prefix + ".*.*"}, Storage: jetstream.FileStorage,
			MaxMsgs: -1, MaxBytes: -1, MaxMsgsPerSubject: -1, MaxMsgSize: -1, MaxConsumers: -1,
			AllowDirect: true, DenyDelete: true, DenyPurge: true, Duplicates: 2 * time.Minute,
			Metadata: map[string]string{"ordo.partitions": "8"},
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	old, err := streams.Open(ctx, nc, streams.Config{})
	if err != nil {
		t.Fatalf("Open of a log without identity: %v", err)
	}
	if old.Log().ID != "" || old.Partitions() != 8 {
		t.Fatalf("old log: %+v", old.Log())
	}
	appendChain(t, old, "o-1", 3)
	if _, err := streams.Open(ctx, nc, streams.Config{LogID: "0123456789abcdef0123456789abcdef"}); !errors.Is(err, eventlog.ErrLogMismatch) {
		t.Fatalf("Open of a log without identity expecting an id: %v, want ErrLogMismatch", err)
	}

	li, err := streams.Init(ctx, nc, streams.Config{Partitions: 16})
	if err != nil {
		t.Fatal(err)
	}
	if li.New || !li.Adopted || len(li.ID) != 32 || li.Partitions != 8 ||
		strings.Join(li.Added, ",") != streams.DLQStream+","+streams.TimersStream {
		t.Fatalf("Init of a log without identity: %+v", li)
	}
	for _, name := range streams.LogStreams() {
		st, err := js.Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		md := st.CachedInfo().Config.Metadata
		if md[streams.LogIDKey] != li.ID {
			t.Errorf("%s: log id %q, want %s", name, md[streams.LogIDKey], li.ID)
		}
		want := map[string]string{"ORDERS": "4", "INVENTORY": "1", "PAYMENTS": "1"}[name]
		if md[streams.SignedFromKey] != want {
			t.Errorf("%s: %s = %q, want %q", name, streams.SignedFromKey, md[streams.SignedFromKey], want)
		}
	}
	again, err := streams.Init(ctx, nc, streams.Config{})
	if err != nil || again.ID != li.ID || again.Adopted || len(again.Added) > 0 {
		t.Fatalf("Init after adopting: %+v %v", again, err)
	}

	// An adoption cut short (one stream updated, the others not) is
	// refused by Open and finished by Init with the same id.
	setMetadata(t, nc, "PAYMENTS", streams.LogIDKey, "")
	if _, err := streams.Open(ctx, nc, streams.Config{}); !errors.Is(err, eventlog.ErrLogMismatch) || !strings.Contains(err.Error(), "PAYMENTS") {
		t.Fatalf("Open of a half-adopted log: %v", err)
	}
	if fin, err := streams.Init(ctx, nc, streams.Config{}); err != nil || fin.ID != li.ID || !fin.Adopted {
		t.Fatalf("Init finishing the adoption: %+v %v", fin, err)
	}
	// A stream whose id was removed by hand after commits were appended
	// gets it back, but where its signing began does not move.
	appendChain(t, old, "o-2", 2)
	setMetadata(t, nc, "ORDERS", streams.LogIDKey, "")
	if fin, err := streams.Init(ctx, nc, streams.Config{}); err != nil || fin.ID != li.ID || !fin.Adopted {
		t.Fatalf("Init giving ORDERS its id again: %+v %v", fin, err)
	}
	st, err := js.Stream(ctx, "ORDERS")
	if err != nil {
		t.Fatal(err)
	}
	if md := st.CachedInfo().Config.Metadata; md[streams.LogIDKey] != li.ID || md[streams.SignedFromKey] != "4" {
		t.Fatalf("ORDERS given its id again: %s = %q, %s = %q, want %s and 4",
			streams.LogIDKey, md[streams.LogIDKey], streams.SignedFromKey, md[streams.SignedFromKey], li.ID)
	}
	if s, err := streams.Open(ctx, nc, streams.Config{LogID: li.ID}); err != nil || s.Log().ID != li.ID {
		t.Fatalf("Open after adopting: %v", err)
	}
}

// A stream whose limits were changed after the log was created is
// refused, DLQ and TIMERS as well as the commit streams.
func TestOpenRefusesChangedLimits(t *testing.T) {
	for _, name := range []string{"ORDERS", streams.DLQStream, streams.TimersStream} {
		t.Run(name, func(t *testing.T) {
			_, nc := testkit.LogNATS(t)
			ctx := testCtx(t)
			if _, err := streams.Init(ctx, nc, streams.Config{}); err != nil {
				t.Fatal(err)
			}
			js := jsOf(t, nc)
			st, err := js.Stream(ctx, name)
			if err != nil {
				t.Fatal(err)
			}
			sc := st.CachedInfo().Config
			sc.MaxMsgs = 10
			if _, err := js.UpdateStream(ctx, sc); err != nil {
				t.Fatal(err)
			}
			_, err = streams.Open(ctx, nc, streams.Config{})
			if err == nil || !strings.Contains(err.Error(), name) || !strings.Contains(err.Error(), "limits") {
				t.Fatalf("Open with limits on %s: %v", name, err)
			}
		})
	}
}

// Reads and appends on a deleted stream fail with ErrStreamMissing and
// tell the store's OnStreamMissing, instead of passing for a leader
// election.
func TestCallsOnADeletedStream(t *testing.T) {
	_, nc := testkit.LogNATS(t)
	ctx := testCtx(t)
	if _, err := streams.Init(ctx, nc, streams.Config{}); err != nil {
		t.Fatal(err)
	}
	var told atomic.Value
	s, err := streams.Open(ctx, nc, streams.Config{LeaderWait: 500 * time.Millisecond, OnStreamMissing: func(stream string) { told.Store(stream) }})
	if err != nil {
		t.Fatal(err)
	}
	appendChain(t, s, "o-1", 2)
	if err := jsOf(t, nc).DeleteStream(ctx, "ORDERS"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Load(ctx, eventlog.TypeOrder, "o-1", 0); !errors.Is(err, eventlog.ErrStreamMissing) || !strings.Contains(err.Error(), "ORDERS") {
		t.Errorf("Load: %v, want ErrStreamMissing naming ORDERS", err)
	}
	if _, _, err := s.Last(ctx, eventlog.TypeOrder, "o-1"); !errors.Is(err, eventlog.ErrStreamMissing) {
		t.Errorf("Last: %v, want ErrStreamMissing", err)
	}
	if _, err := s.Append(ctx, sealed(t, "o-2", "c-o-2", 1, ""), 0); !errors.Is(err, eventlog.ErrStreamMissing) {
		t.Errorf("Append: %v, want ErrStreamMissing", err)
	}
	if got, _ := told.Load().(string); got != "ORDERS" {
		t.Errorf("OnStreamMissing told %q, want ORDERS", got)
	}
}

// BenchmarkCheckLog is what orderd's log watch costs every 5 s: one
// CheckLog (a stream info request per stream of the log).
func BenchmarkCheckLog(b *testing.B) {
	for _, replicas := range []int{1, 3} {
		b.Run(fmt.Sprintf("R%d", replicas), func(b *testing.B) {
			var nc *nats.Conn
			if replicas == 1 {
				_, nc = testkit.LogNATS(b)
			} else {
				_, nc = testkit.Cluster(b, replicas)
			}
			ctx := context.Background()
			if _, err := streams.Init(ctx, nc, streams.Config{Replicas: replicas}); err != nil {
				b.Fatal(err)
			}
			s, err := streams.Open(ctx, nc, streams.Config{})
			if err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				if err := s.CheckLog(ctx); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// SignedFrom reads a stream's ordo.signed_from; metadata that is not a
// sequence answers 1 (everything must be signed) with the port's
// ErrBadSignedFrom, which the audit checks without importing streams.
func TestSignedFromMetadataThatIsNoSequence(t *testing.T) {
	_, nc := testkit.LogNATS(t)
	ctx := testCtx(t)
	s, err := testkit.OpenLog(ctx, nc, streams.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if seq, err := s.SignedFrom(ctx, eventlog.TypeOrder); err != nil || seq != 1 {
		t.Fatalf("a new log's ORDERS: signed from %d, %v; want 1", seq, err)
	}
	js := jsOf(t, nc)
	st, err := js.Stream(ctx, eventlog.StreamOrders)
	if err != nil {
		t.Fatal(err)
	}
	cfg := st.CachedInfo().Config
	cfg.Metadata[streams.SignedFromKey] = "soon"
	if _, err := js.UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	seq, err := s.SignedFrom(ctx, eventlog.TypeOrder)
	if seq != 1 || !errors.Is(err, eventlog.ErrBadSignedFrom) || !strings.Contains(err.Error(), `"soon"`) {
		t.Fatalf("metadata %q: signed from %d, %v; want 1 and ErrBadSignedFrom", "soon", seq, err)
	}
	if !strings.Contains(eventlog.ErrBadSignedFrom.Error(), streams.SignedFromKey) {
		t.Errorf("%q does not name the metadata key %s", eventlog.ErrBadSignedFrom, streams.SignedFromKey)
	}
}
