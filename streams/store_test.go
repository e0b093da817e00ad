package streams_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ordo-shop/ordo/eventlog"
	"github.com/ordo-shop/ordo/eventlog/logtest"
	"github.com/ordo-shop/ordo/events"
	"github.com/ordo-shop/ordo/internal/testkit"
	"github.com/ordo-shop/ordo/streams"
)

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// openR1 returns a store on its own single in-process server.
func openR1(t *testing.T, cfg streams.Config) (*streams.Store, *nats.Conn) {
	t.Helper()
	_, nc := testkit.LogNATS(t)
	s, err := testkit.OpenLog(testCtx(t), nc, cfg)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	return s, nc
}

// sealed builds a sealed commit for an order with one minimal event.
func sealed(t *testing.T, id, commitID string, version uint64, prevHash string) *events.Commit {
	t.Helper()
	c := &events.Commit{
		CommitID:      commitID,
		AggregateType: eventlog.TypeOrder,
		AggregateID:   id,
		Version:       version,
		Events:        []events.Event{{Type: "test.happened", SchemaVersion: 1, Data: json.RawMessage(fmt.Sprintf(`{"n":%d}`, version))}},
		Metadata:      events.Metadata{Actor: "test", RecordedAt: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)},
	}
	if err := c.Seal(prevHash); err != nil {
		t.Fatal(err)
	}
	return c
}

// appendChain appends n commits to one order and returns their records.
func appendChain(t *testing.T, s *streams.Store, id string, n int) []eventlog.Record {
	t.Helper()
	ctx := testCtx(t)
	var (
		prev string
		seq  uint64
		recs []eventlog.Record
	)
	for v := 1; v <= n; v++ {
		c := sealed(t, id, fmt.Sprintf("%s-%d", id, v), uint64(v), prev)
		res, err := s.Append(ctx, c, seq)
		if err != nil {
			t.Fatalf("append %s v%d: %v", id, v, err)
		}
		seq, prev = res.Seq, c.Hash
		recs = append(recs, eventlog.Record{Stream: res.Stream, Seq: res.Seq, Commit: c})
	}
	return recs
}

func TestAcceptanceR1(t *testing.T) {
	logtest.Run(t, func(t *testing.T) eventlog.Log {
		s, _ := openR1(t, streams.Config{})
		return s
	})
}

// TestR3 shares one three-node cluster among its subtests: clusters are
// slow to start on small machines.
func TestR3(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test")
	}
	_, nc := testkit.Cluster(t, 3)
	s, err := testkit.OpenLog(testCtx(t), nc, streams.Config{Replicas: 3})
	if err != nil {
		t.Fatalf("open R3: %v", err)
	}
	info, err := jsOf(t, nc).Stream(testCtx(t), "ORDERS")
	if err != nil {
		t.Fatal(err)
	}
	if got := info.CachedInfo().Config.Replicas; got != 3 {
		t.Fatalf("ORDERS has %d replicas, want 3", got)
	}

	t.Run("Acceptance", func(t *testing.T) {
		logtest.Run(t, func(*testing.T) eventlog.Log { return s })
	})
	t.Run("ConflictCode", func(t *testing.T) {
		// Against a commit already applied, a replicated stream reports
		// the same code as a single server.
		checkConflictCode(t, s, jetstream.JSErrCodeStreamWrongLastSequence)
	})
	t.Run("InFlightConflict", func(t *testing.T) {
		// Against a commit still being replicated the leader answers with
		// the constant variant, 10164. Which one a race produces depends on
		// timing, so only log the codes; both must be ErrConflict.
		js := jsOf(t, nc)
		ctx := testCtx(t)
		codes := map[jetstream.ErrorCode]int{}
		for i := range 20 {
			id := fmt.Sprintf("inflight-%d-%d", time.Now().UnixNano(), i)
			first := sealed(t, id, id+"-first", 1, "")
			subj, _ := s.Subject(eventlog.TypeOrder, id)
			data, _ := events.Marshal(first)
			paf, err := js.PublishAsync(subj, data, jetstream.WithMsgID(first.CommitID), jetstream.WithExpectLastSequencePerSubject(0))
			if err != nil {
				t.Fatal(err)
			}
			_, err = s.Append(ctx, sealed(t, id, id+"-second", 1, ""), 0)
			if !errors.Is(err, eventlog.ErrConflict) {
				t.Fatalf("second new commit on %s: %v, want ErrConflict", id, err)
			}
			var apiErr *jetstream.APIError
			if errors.As(err, &apiErr) {
				codes[apiErr.ErrorCode]++
			}
			select {
			case <-paf.Ok():
			case err := <-paf.Err():
				t.Fatalf("first commit: %v", err)
			case <-ctx.Done():
				t.Fatal(ctx.Err())
			}
		}
		t.Logf("conflict codes seen: %v", codes)
	})
	t.Run("RetryWhileInFlight", func(t *testing.T) {
		// A retry that reaches the leader while the first attempt is still
		// being replicated is refused with 10158 "duplicate message id is
		// in process"; Append waits for the first attempt and then gets a
		// duplicate ack.
		js := jsOf(t, nc)
		ctx := testCtx(t)
		for i := range 20 {
			id := fmt.Sprintf("inflight-retry-%d-%d", time.Now().UnixNano(), i)
			c := sealed(t, id, id+"-c1", 1, "")
			subj, _ := s.Subject(eventlog.TypeOrder, id)
			data, _ := events.Marshal(c)
			paf, err := js.PublishAsync(subj, data, jetstream.WithMsgID(c.CommitID), jetstream.WithExpectLastSequencePerSubject(0))
			if err != nil {
				t.Fatal(err)
			}
			res, err := s.Append(ctx, c, 0)
			var ack *jetstream.PubAck
			select {
			case ack = <-paf.Ok():
			case err := <-paf.Err():
				t.Fatalf("first attempt: %v", err)
			case <-ctx.Done():
				t.Fatal(ctx.Err())
			}
			if err != nil || !res.Duplicate || res.Seq != ack.Sequence {
				t.Fatalf("retry while in flight: %+v, %v; want a duplicate of seq %d", res, err, ack.Sequence)
			}
		}
	})
	t.Run("RetryAfterSuccess", func(t *testing.T) {
		raw := retryRaw(t, s, jsOf(t, nc))
		// Replicated streams check the message id first: a duplicate ack.
		if raw.err != nil || !raw.ack.Duplicate || raw.ack.Sequence != raw.first {
			t.Fatalf("R3 raw retry: ack %+v, err %v; want a duplicate ack of seq %d", raw.ack, raw.err, raw.first)
		}
	})
}

func jsOf(t *testing.T, nc *nats.Conn) jetstream.JetStream {
	t.Helper()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

type rawRetry struct {
	first uint64
	ack   *jetstream.PubAck
	err   error
}

// retryRaw appends a commit through the store, then republishes the very
// same message (same Nats-Msg-Id, same expected sequence 0) with the raw
// JetStream client, as a client that lost the ack would, and returns what
// the server said. It also checks that the store's own Append reports the
// retry as a successful duplicate, and that the log holds the commit once.
func retryRaw(t *testing.T, s *streams.Store, js jetstream.JetStream) rawRetry {
	t.Helper()
	ctx := testCtx(t)
	id := fmt.Sprintf("retry-%d", time.Now().UnixNano())
	c := sealed(t, id, id+"-c1", 1, "")
	res, err := s.Append(ctx, c, 0)
	if err != nil {
		t.Fatal(err)
	}
	subj, err := s.Subject(eventlog.TypeOrder, id)
	if err != nil {
		t.Fatal(err)
	}
	data, err := events.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	ack, rerr := js.Publish(ctx, subj, data, jetstream.WithMsgID(c.CommitID), jetstream.WithExpectLastSequencePerSubject(0))
	t.Logf("raw retry of a stored commit: ack=%+v err=%v", ack, rerr)

	again, err := s.Append(ctx, c, 0)
	if err != nil || !again.Duplicate || again.Seq != res.Seq {
		t.Fatalf("store retry: %+v, %v; want duplicate at %d", again, err, res.Seq)
	}
	// Retrying with the sequence the commit itself got passes the
	// sequence check on both and hits the message id check.
	again, err = s.Append(ctx, c, res.Seq)
	if err != nil || !again.Duplicate || again.Seq != res.Seq {
		t.Fatalf("store retry at its own seq: %+v, %v; want duplicate at %d", again, err, res.Seq)
	}
	recs, err := s.Load(ctx, eventlog.TypeOrder, id, 0)
	if err != nil || len(recs) != 1 {
		t.Fatalf("load after retries: %d records, %v; want 1", len(recs), err)
	}
	return rawRetry{first: res.Seq, ack: ack, err: rerr}
}

func TestRetryAfterSuccessR1(t *testing.T) {
	s, nc := openR1(t, streams.Config{})
	raw := retryRaw(t, s, jsOf(t, nc))
	// A single server checks the expected sequence before the message id:
	// the retry is a conflict (10071), which Append resolves by reading
	// the last commit.
	var apiErr *jetstream.APIError
	if !errors.As(raw.err, &apiErr) || apiErr.ErrorCode != jetstream.JSErrCodeStreamWrongLastSequence {
		t.Fatalf("R1 raw retry: ack %+v, err %v; want error code 10071", raw.ack, raw.err)
	}
}

func TestConflictCodeR1(t *testing.T) {
	s, _ := openR1(t, streams.Config{})
	checkConflictCode(t, s, jetstream.JSErrCodeStreamWrongLastSequence)
}

// checkConflictCode makes a stale append and checks that the error is
// ErrConflict and wraps the server's error with the given code.
func checkConflictCode(t *testing.T, s *streams.Store, code jetstream.ErrorCode) {
	t.Helper()
	id := fmt.Sprintf("code-%d", time.Now().UnixNano())
	recs := appendChain(t, s, id, 2)
	stale := sealed(t, id, id+"-stale", 2, recs[0].Commit.Hash)
	_, err := s.Append(testCtx(t), stale, recs[0].Seq)
	if !errors.Is(err, eventlog.ErrConflict) {
		t.Fatalf("stale append: %v, want ErrConflict", err)
	}
	var apiErr *jetstream.APIError
	if !errors.As(err, &apiErr) || apiErr.ErrorCode != code {
		t.Fatalf("stale append: %v, want the server's error code %d wrapped", err, code)
	}
	t.Logf("conflict: %v", err)
}

func TestPartitionTokenStable(t *testing.T) {
	s, _ := openR1(t, streams.Config{})
	if s.Partitions() != streams.DefaultPartitions {
		t.Fatalf("partitions %d, want %d", s.Partitions(), streams.DefaultPartitions)
	}
	// Golden values (FNV-1a 32 computed independently): changing them moves
	// every aggregate to another subject.
	golden := map[string]string{
		"o-123":      "order.7.o-123",
		"TEA-250":    "order.7.TEA-250",
		"a":          "order.12.a",
		"01JABCDXYZ": "order.15.01JABCDXYZ",
	}
	for id, want := range golden {
		got, err := s.Subject(eventlog.TypeOrder, id)
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("Subject(order, %q) = %q, want %q", id, got, want)
		}
	}
	for _, tc := range []struct{ typ, prefix, stream string }{
		{eventlog.TypeOrder, "order", "ORDERS"},
		{eventlog.TypeInventory, "sku", "INVENTORY"},
		{eventlog.TypePayment, "payment", "PAYMENTS"},
	} {
		for i := range 200 {
			id := fmt.Sprintf("id-%d", i)
			h := fnv.New32a()
			h.Write([]byte(id))
			want := fmt.Sprintf("%s.%d.%s", tc.prefix, h.Sum32()%16, id)
			got, err := s.Subject(tc.typ, id)
			if err != nil || got != want {
				t.Fatalf("Subject(%s, %s) = %q, %v; want %q", tc.typ, id, got, err, want)
			}
			if p := s.Partition(id); fmt.Sprintf("%s.%d.%s", tc.prefix, p, id) != got {
				t.Fatalf("Partition(%s) = %d disagrees with %s", id, p, got)
			}
		}
		if name, err := s.StreamName(tc.typ); err != nil || name != tc.stream {
			t.Errorf("StreamName(%s) = %q, %v", tc.typ, name, err)
		}
	}
}

func TestInvalidIDsAndTypes(t *testing.T) {
	s, _ := openR1(t, streams.Config{})
	ctx := testCtx(t)
	bad := []string{"", "a.b", "*", ">", "a*", "a>", "a b", "a\tb", "é", "a/b", "a\x00", strings.Repeat("x", 129), "order.1.x"}
	for _, id := range bad {
		if streams.ValidID(id) {
			t.Errorf("ValidID(%q) = true", id)
		}
		if _, err := s.Subject(eventlog.TypeOrder, id); !errors.Is(err, eventlog.ErrInvalidID) {
			t.Errorf("Subject(order, %q): %v, want ErrInvalidID", id, err)
		}
		if _, err := s.Load(ctx, eventlog.TypeOrder, id, 0); !errors.Is(err, eventlog.ErrInvalidID) {
			t.Errorf("Load(order, %q): %v, want ErrInvalidID", id, err)
		}
		if _, _, err := s.Last(ctx, eventlog.TypeOrder, id); !errors.Is(err, eventlog.ErrInvalidID) {
			t.Errorf("Last(order, %q): %v, want ErrInvalidID", id, err)
		}
		if id != "" {
			c := sealed(t, id, "c-1", 1, "")
			if _, err := s.Append(ctx, c, 0); !errors.Is(err, eventlog.ErrInvalidID) {
				t.Errorf("Append(%q): %v, want ErrInvalidID", id, err)
			}
		}
	}
	for _, id := range []string{"a", "A-z_0-9", strings.Repeat("x", 128)} {
		if !streams.ValidID(id) {
			t.Errorf("ValidID(%q) = false", id)
		}
	}
	for _, typ := range []string{"", "orders", "ORDER", "sku", "order.*"} {
		if _, err := s.Subject(typ, "x"); !errors.Is(err, eventlog.ErrUnknownType) {
			t.Errorf("Subject(%q): %v, want ErrUnknownType", typ, err)
		}
		if _, err := s.StreamName(typ); !errors.Is(err, eventlog.ErrUnknownType) {
			t.Errorf("StreamName(%q): %v, want ErrUnknownType", typ, err)
		}
		if _, err := s.LastSeq(ctx, typ); !errors.Is(err, eventlog.ErrUnknownType) {
			t.Errorf("LastSeq(%q): %v, want ErrUnknownType", typ, err)
		}
		c := sealed(t, "x", "c-1", 1, "")
		c.AggregateType = typ
		if _, err := s.Append(ctx, c, 0); err == nil {
			t.Errorf("Append with type %q succeeded", typ)
		}
	}
	// An invalid commit is refused before anything is published.
	c := sealed(t, "x", "c-1", 1, "")
	c.Events = nil
	if _, err := s.Append(ctx, c, 0); !errors.Is(err, events.ErrInvalidCommit) {
		t.Errorf("Append of a commit without events: %v, want ErrInvalidCommit", err)
	}
	if n, err := s.LastSeq(ctx, eventlog.TypeOrder); err != nil || n != 0 {
		t.Errorf("after refused appends ORDERS is at %d (%v), want 0", n, err)
	}
}

func TestOpenKeepsPartitions(t *testing.T) {
	_, nc := testkit.LogNATS(t)
	ctx := testCtx(t)
	first, err := testkit.OpenLog(ctx, nc, streams.Config{Partitions: 4})
	if err != nil {
		t.Fatal(err)
	}
	second, err := streams.Open(ctx, nc, streams.Config{Partitions: 32})
	if err != nil {
		t.Fatal(err)
	}
	if first.Partitions() != 4 || second.Partitions() != 4 {
		t.Fatalf("partitions %d then %d, want 4 both times", first.Partitions(), second.Partitions())
	}
	js := jsOf(t, nc)
	for _, name := range []string{"ORDERS", "INVENTORY", "PAYMENTS"} {
		st, err := js.Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		cfg := st.CachedInfo().Config
		if cfg.Metadata["ordo.partitions"] != "4" || !cfg.AllowDirect || !cfg.DenyDelete || !cfg.DenyPurge ||
			cfg.Storage != jetstream.FileStorage || cfg.Duplicates != streams.DefaultDuplicateWindow {
			t.Errorf("%s config: %+v", name, cfg)
		}
	}
	a, _ := first.Subject(eventlog.TypePayment, "p-1")
	b, _ := second.Subject(eventlog.TypePayment, "p-1")
	if a != b {
		t.Fatalf("subjects differ between opens: %s, %s", a, b)
	}
}

func TestOpenRejectsIncompatibleStream(t *testing.T) {
	_, nc := testkit.LogNATS(t)
	ctx := testCtx(t)
	// A stream someone made by hand: no partition metadata, deletes allowed.
	if _, err := jsOf(t, nc).CreateStream(ctx, jetstream.StreamConfig{Name: "INVENTORY", Subjects: []string{"sku.*.*"}, Storage: jetstream.FileStorage}); err != nil {
		t.Fatal(err)
	}
	_, err := streams.Open(ctx, nc, streams.Config{})
	if err == nil || !strings.Contains(err.Error(), "INVENTORY") {
		t.Fatalf("open over an incompatible stream: %v, want an error naming INVENTORY", err)
	}
}

// A log whose stream was deleted is refused, never completed with an
// empty stream: that would hide the loss.
func TestOpenRefusesAPartlyDestroyedLog(t *testing.T) {
	_, nc := testkit.LogNATS(t)
	ctx := testCtx(t)
	if _, err := testkit.OpenLog(ctx, nc, streams.Config{}); err != nil {
		t.Fatal(err)
	}
	js := jsOf(t, nc)
	if err := js.DeleteStream(ctx, "PAYMENTS"); err != nil {
		t.Fatal(err)
	}
	_, err := streams.Open(ctx, nc, streams.Config{})
	if !errors.Is(err, eventlog.ErrStreamMissing) || !strings.Contains(err.Error(), "PAYMENTS") {
		t.Fatalf("open without PAYMENTS: %v, want ErrStreamMissing naming PAYMENTS", err)
	}
	if _, err := js.Stream(ctx, "PAYMENTS"); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Fatalf("PAYMENTS after the refused open: %v, want still missing", err)
	}
}

func TestConfigValidation(t *testing.T) {
	_, nc := testkit.LogNATS(t)
	for _, cfg := range []streams.Config{
		{Partitions: -1}, {Partitions: streams.MaxPartitions + 1}, {Replicas: 6}, {Replicas: -1}, {DuplicateWindow: -time.Second},
	} {
		if _, err := streams.Open(testCtx(t), nc, cfg); err == nil {
			t.Errorf("Open(%+v) succeeded", cfg)
		}
	}
}

func TestLoadPages(t *testing.T) {
	s, _ := openR1(t, streams.Config{})
	// More commits than one direct batch get returns.
	const n = 600
	want := appendChain(t, s, "long", n)
	appendChain(t, s, "other", 3)
	got, err := s.Load(testCtx(t), eventlog.TypeOrder, "long", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != n {
		t.Fatalf("loaded %d commits, want %d", len(got), n)
	}
	for i := range got {
		if got[i].Seq != want[i].Seq || got[i].Commit.CommitID != want[i].Commit.CommitID {
			t.Fatalf("record %d: %d %s, want %d %s", i, got[i].Seq, got[i].Commit.CommitID, want[i].Seq, want[i].Commit.CommitID)
		}
	}
	cs := make([]*events.Commit, len(got))
	for i := range got {
		cs[i] = got[i].Commit
	}
	if breaks := events.VerifyChain(cs); len(breaks) > 0 {
		t.Fatalf("chain: %v", breaks[0])
	}
}

// replay reads a stream through [streams.Store.ReplayRaw], decoding each
// commit.
func replay(ctx context.Context, s *streams.Store, aggType string, from uint64, fn func(eventlog.Record) error) error {
	return s.ReplayRaw(ctx, aggType, from, func(m eventlog.StoredMsg) error {
		c, err := events.Unmarshal(m.Data)
		if err != nil {
			return err
		}
		return fn(eventlog.Record{Stream: m.Stream, Seq: m.Seq, Commit: c})
	})
}

func TestReplayOrder(t *testing.T) {
	s, _ := openR1(t, streams.Config{})
	ctx := testCtx(t)
	// Interleave three aggregates.
	var all []uint64
	prev := map[string]string{}
	last := map[string]uint64{}
	for v := 1; v <= 20; v++ {
		for _, id := range []string{"r1", "r2", "r3"} {
			c := sealed(t, id, fmt.Sprintf("%s-%d", id, v), uint64(v), prev[id])
			res, err := s.Append(ctx, c, last[id])
			if err != nil {
				t.Fatal(err)
			}
			prev[id], last[id] = c.Hash, res.Seq
			all = append(all, res.Seq)
		}
	}
	lastSeq, err := s.LastSeq(ctx, eventlog.TypeOrder)
	if err != nil || lastSeq != all[len(all)-1] {
		t.Fatalf("LastSeq = %d, %v; want %d", lastSeq, err, all[len(all)-1])
	}

	var got []uint64
	versions := map[string]uint64{}
	err = replay(ctx, s, eventlog.TypeOrder, 1, func(r eventlog.Record) error {
		got = append(got, r.Seq)
		if r.Commit.Version != versions[r.Commit.AggregateID]+1 {
			return fmt.Errorf("%s: version %d after %d", r.Commit.AggregateID, r.Commit.Version, versions[r.Commit.AggregateID])
		}
		versions[r.Commit.AggregateID] = r.Commit.Version
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != fmt.Sprint(all) {
		t.Fatalf("replayed %v, want %v", got, all)
	}

	// From the middle.
	got = got[:0]
	if err := replay(ctx, s, eventlog.TypeOrder, all[30], func(r eventlog.Record) error {
		got = append(got, r.Seq)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != fmt.Sprint(all[30:]) {
		t.Fatalf("replay from %d: %v", all[30], got)
	}

	// fn's first error stops the replay.
	stop := errors.New("stop")
	n := 0
	err = replay(ctx, s, eventlog.TypeOrder, 1, func(eventlog.Record) error {
		n++
		if n == 5 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || n != 5 {
		t.Fatalf("replay with failing fn: err %v after %d calls, want stop after 5", err, n)
	}

	// Past the end and on an empty stream: nothing, no error.
	if err := replay(ctx, s, eventlog.TypeOrder, lastSeq+1, func(eventlog.Record) error { return errors.New("called") }); err != nil {
		t.Fatal(err)
	}
	if err := replay(ctx, s, eventlog.TypePayment, 1, func(eventlog.Record) error { return errors.New("called") }); err != nil {
		t.Fatal(err)
	}
}
