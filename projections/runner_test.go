package projections_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ordo-shop/ordo/eventlog"
	"github.com/ordo-shop/ordo/eventlog/logtest"
	"github.com/ordo-shop/ordo/eventlog/memlog"
	"github.com/ordo-shop/ordo/events"
	"github.com/ordo-shop/ordo/internal/testkit"
	"github.com/ordo-shop/ordo/projections"
	"github.com/ordo-shop/ordo/streams"
)

// memSink is a Sink in memory that checks what it is given: batches of
// the right partition, after the checkpoint, in log order, each commit
// once.
type memSink struct {
	t       *testing.T
	log     eventlog.Log
	mu      sync.Mutex
	cp      map[int]uint64
	applied map[int][]uint64
	commits int
}

func newMemSink(t *testing.T, log eventlog.Log) *memSink {
	return &memSink{t: t, log: log, cp: map[int]uint64{}, applied: map[int][]uint64{}}
}

func (m *memSink) Checkpoint(_ context.Context, p int) (uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.cp[p], nil
}

func (m *memSink) Commit(_ context.Context, p int, from, to uint64, recs []eventlog.Record) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cp[p] != from {
		return projections.ErrCheckpointMoved
	}
	if to <= from {
		m.t.Errorf("partition %d: commit from %d to %d", p, from, to)
	}
	prev := from
	for _, r := range recs {
		if r.Seq <= prev || r.Seq > to || m.log.Partition(r.Commit.AggregateID) != p {
			m.t.Errorf("partition %d: commit %d (partition %d) in batch (%d, %d] after %d", p, r.Seq, m.log.Partition(r.Commit.AggregateID), from, to, prev)
		}
		prev = r.Seq
		m.applied[p] = append(m.applied[p], r.Seq)
	}
	m.cp[p] = to
	m.commits++
	return nil
}

// decodingMemSink is a memSink that decodes raw commits itself, so the
// runner takes its DecodingSink path. It checks that each decoded value
// belongs to the partition and sequence the runner hands it with.
type decodingMemSink struct{ *memSink }

func (d decodingMemSink) Decode(rec eventlog.RawRecord) (string, any, error) {
	c, err := events.Unmarshal(rec.Data)
	if err != nil {
		return "", nil, err
	}
	return c.AggregateID, eventlog.Record{Stream: "ORDERS", Seq: rec.Seq, Commit: c}, nil
}

func (d decodingMemSink) CommitDecoded(ctx context.Context, p int, from, to uint64, recs []projections.Decoded) error {
	out := make([]eventlog.Record, len(recs))
	for i, r := range recs {
		rec := r.Value.(eventlog.Record)
		if rec.Seq != r.Seq || r.Partition != p {
			d.t.Errorf("decoded seq %d partition %d handed over as seq %d partition %d", rec.Seq, p, r.Seq, r.Partition)
		}
		out[i] = rec
	}
	return d.memSink.Commit(ctx, p, from, to, out)
}

// opener opens an empty log of some partitions.
type opener func(t *testing.T, ctx context.Context, partitions int) eventlog.Log

// sinks runs a test with a plain Sink and with a DecodingSink, each on the
// in-memory log and, unless -short, on an in-process JetStream server.
func sinks(t *testing.T, test func(t *testing.T, open opener, wrap func(*memSink) projections.Sink)) {
	for _, l := range []struct {
		name string
		open opener
	}{{"memlog", openMemlog}, {"jetstream", openJetStream}} {
		t.Run(l.name, func(t *testing.T) {
			t.Run("records", func(t *testing.T) { test(t, l.open, func(m *memSink) projections.Sink { return m }) })
			t.Run("decoding", func(t *testing.T) {
				test(t, l.open, func(m *memSink) projections.Sink { return decodingMemSink{m} })
			})
		})
	}
}

func openMemlog(t *testing.T, _ context.Context, partitions int) eventlog.Log {
	t.Helper()
	log, err := memlog.New(memlog.Options{Partitions: partitions})
	if err != nil {
		t.Fatal(err)
	}
	return log
}

// openJetStream opens a log on an in-process JetStream server; it skips
// the test under -short, which starts no server.
func openJetStream(t *testing.T, ctx context.Context, partitions int) eventlog.Log {
	t.Helper()
	if testing.Short() {
		t.Skip("JetStream: not under -short")
	}
	_, nc := testkit.NATS(t)
	log, err := testkit.OpenLog(ctx, nc, streams.Config{Partitions: partitions})
	if err != nil {
		t.Fatal(err)
	}
	return log
}

func (m *memSink) min() uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	low := uint64(0)
	for p := range m.log.Partitions() {
		if p == 0 || m.cp[p] < low {
			low = m.cp[p]
		}
	}
	return low
}

func appendCommits(t *testing.T, log eventlog.Log, ids []string, perID int) {
	t.Helper()
	var wg sync.WaitGroup
	for _, id := range ids {
		wg.Go(func() {
			var seq uint64
			prev := ""
			for v := 1; v <= perID; v++ {
				c := &events.Commit{CommitID: fmt.Sprintf("%s-%d", id, v), AggregateType: eventlog.TypeOrder, AggregateID: id, Version: uint64(v),
					Events:   []events.Event{{Type: "test.happened", SchemaVersion: 1, Data: json.RawMessage(`{}`)}},
					Metadata: events.Metadata{RecordedAt: time.Unix(0, 0).UTC()}}
				if err := c.Seal(prev); err != nil {
					t.Error(err)
					return
				}
				res, err := log.Append(context.Background(), c, seq)
				if err != nil {
					t.Error(err)
					return
				}
				seq, prev = res.Seq, c.Hash
			}
		})
	}
	wg.Wait()
}

// TestTwoRunnersApplyEachCommitOnce runs two runners on the same sink and
// partitions at once (no leases: the worst case), while commits are
// appended; every commit must be applied exactly once, in log order, and
// every partition's checkpoint must reach the end of the stream.
func TestTwoRunnersApplyEachCommitOnce(t *testing.T) { sinks(t, twoRunnersApplyEachCommitOnce) }

func twoRunnersApplyEachCommitOnce(t *testing.T, open opener, wrap func(*memSink) projections.Sink) {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	log := open(t, ctx, 4)
	// Only partitions of these ids get commits; the others stay empty
	// and must still follow the stream.
	ids := []string{"a", "b", "c"}
	appendCommits(t, log, ids, 20)
	sink := newMemSink(t, log)
	var wg sync.WaitGroup
	rctx, stop := context.WithCancel(ctx)
	for range 2 {
		r, err := projections.New(log, wrap(sink), nil, projections.Options{BatchSize: 7, IdlePoll: 20 * time.Millisecond, WatermarkInterval: time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			if err := r.Run(rctx); err != nil {
				t.Error(err)
			}
		})
	}
	// More while they run.
	more := []string{"d", "e", "f", "g", "h"}
	appendCommits(t, log, more, 30)
	last, err := log.LastSeq(ctx, eventlog.TypeOrder)
	if err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, fmt.Sprintf("every checkpoint to reach %d", last), 30*time.Second, func() (bool, error) {
		low := sink.min()
		return low >= last, fmt.Errorf("the lowest is %d", low)
	})
	stop()
	wg.Wait()

	want := map[int][]uint64{}
	if err := logtest.Replay(ctx, log, eventlog.TypeOrder, 0, func(r eventlog.Record) error {
		p := log.Partition(r.Commit.AggregateID)
		want[p] = append(want[p], r.Seq)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for p := range 4 {
		if !slices.Equal(sink.applied[p], want[p]) {
			t.Errorf("partition %d: applied %v\nlog has %v", p, sink.applied[p], want[p])
		}
	}
}

// TestCatchUpReachesTheEnd fills a sink from an existing log and checks
// that an idle partition's checkpoint follows the stream too.
func TestCatchUpReachesTheEnd(t *testing.T) { sinks(t, catchUpReachesTheEnd) }

func catchUpReachesTheEnd(t *testing.T, open opener, wrap func(*memSink) projections.Sink) {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	log := open(t, ctx, 8)
	appendCommits(t, log, []string{"only-one"}, 25)
	sink := newMemSink(t, log)
	r, err := projections.New(log, wrap(sink), nil, projections.Options{BatchSize: 10})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.CatchUp(ctx, 2); err != nil {
		t.Fatal(err)
	}
	for p := range 8 {
		if sink.cp[p] != 25 {
			t.Errorf("partition %d at %d, want 25", p, sink.cp[p])
		}
	}
	if got := len(sink.applied[log.Partition("only-one")]); got != 25 {
		t.Errorf("applied %d commits, want 25", got)
	}
	// Nothing new: a second catch-up commits nothing.
	before := sink.commits
	if err := r.CatchUp(ctx, 0); err != nil {
		t.Fatal(err)
	}
	if sink.commits != before {
		t.Errorf("a catch-up with nothing to do committed %d times", sink.commits-before)
	}
	cctx, cancelNow := context.WithCancel(ctx)
	cancelNow()
	appendCommits(t, log, []string{"later"}, 3)
	if err := r.CatchUp(cctx, 0); err == nil {
		t.Error("a cancelled catch-up reported success")
	}
}
