package projections_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ordo-shop/ordo/eventlog"
	"github.com/ordo-shop/ordo/events"
	"github.com/ordo-shop/ordo/internal/testkit"
	"github.com/ordo-shop/ordo/projections"
	"github.com/ordo-shop/ordo/streams"
)

// quarantineSink is a memSink that refuses as poison every batch holding
// a commit of bad, counts how often each was tried, and records what the
// runner sets aside.
type quarantineSink struct {
	*memSink
	bad         map[uint64]bool
	tries       map[uint64]int
	quarantined []projections.Quarantined
}

func (s *quarantineSink) Commit(ctx context.Context, p int, from, to uint64, recs []eventlog.Record) error {
	s.mu.Lock()
	for _, r := range recs {
		if s.bad[r.Seq] {
			if len(recs) == 1 {
				s.tries[r.Seq]++
			}
			s.mu.Unlock()
			return projections.Poison(fmt.Errorf("seq %d: the store refuses it", r.Seq))
		}
	}
	s.mu.Unlock()
	return s.memSink.Commit(ctx, p, from, to, recs)
}

func (s *quarantineSink) Quarantine(_ context.Context, from, to uint64, q projections.Quarantined) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cp[q.Partition] != from {
		return projections.ErrCheckpointMoved
	}
	if q.Seq <= from || q.Seq > to {
		s.t.Errorf("quarantine of seq %d moves partition %d from %d to %d", q.Seq, q.Partition, from, to)
	}
	s.quarantined = append(s.quarantined, q)
	s.cp[q.Partition] = to
	return nil
}

// decodingQuarantineSink is a quarantineSink on the runner's decoding
// path: a message that is not a commit does not decode.
type decodingQuarantineSink struct{ *quarantineSink }

func (d decodingQuarantineSink) Decode(rec eventlog.RawRecord) (string, any, error) {
	c, err := events.Unmarshal(rec.Data)
	if err != nil {
		return "", nil, err
	}
	return c.AggregateID, eventlog.Record{Stream: "ORDERS", Seq: rec.Seq, Commit: c}, nil
}

func (d decodingQuarantineSink) CommitDecoded(ctx context.Context, p int, from, to uint64, recs []projections.Decoded) error {
	out := make([]eventlog.Record, len(recs))
	for i, r := range recs {
		rec, ok := r.Value.(eventlog.Record)
		if !ok {
			d.t.Errorf("seq %d handed to CommitDecoded as %T", r.Seq, r.Value)
			return errors.New("not decoded")
		}
		out[i] = rec
	}
	return d.quarantineSink.Commit(ctx, p, from, to, out)
}

// TestPoisonCommitsAreQuarantined makes some commits poison for the sink
// and, on the decoding path, stores a message that is not a commit at all
// under an order's subject: the runner must apply every other commit
// exactly once, in order, try each poison commit MaxPoisonAttempts times,
// set each aside once, naming its aggregate, and bring every checkpoint
// to the end of the stream.
func TestPoisonCommitsAreQuarantined(t *testing.T) {
	for _, decoding := range []bool{false, true} {
		t.Run(map[bool]string{false: "records", true: "decoding"}[decoding], func(t *testing.T) {
			poisonCommitsAreQuarantined(t, decoding)
		})
	}
}

func poisonCommitsAreQuarantined(t *testing.T, decoding bool) {
	if testing.Short() {
		t.Skip("poison commits are stored on JetStream: not under -short")
	}
	_, nc := testkit.NATS(t)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	log, err := testkit.OpenLog(ctx, nc, streams.Config{Partitions: 4})
	if err != nil {
		t.Fatal(err)
	}
	appendCommits(t, log, []string{"a", "b", "c", "d"}, 15)
	wantQuarantined := map[uint64]string{}
	var garbageSeq uint64
	if decoding {
		js, err := jetstream.New(nc)
		if err != nil {
			t.Fatal(err)
		}
		subj, err := log.Subject(eventlog.TypeOrder, "garbage-1")
		if err != nil {
			t.Fatal(err)
		}
		ack, err := js.Publish(ctx, subj, []byte("\x00\xff not a commit"))
		if err != nil {
			t.Fatal(err)
		}
		garbageSeq = ack.Sequence
		wantQuarantined[garbageSeq] = "garbage-1"
	}
	appendCommits(t, log, []string{"e", "f"}, 10)

	sink := &quarantineSink{memSink: newMemSink(t, log), bad: map[uint64]bool{}, tries: map[uint64]int{}}
	want := map[int][]uint64{}
	expect := func(r eventlog.Record) error {
		if r.Seq%13 == 0 { // poison for the sink
			sink.bad[r.Seq] = true
			wantQuarantined[r.Seq] = r.Commit.AggregateID
			return nil
		}
		p := log.Partition(r.Commit.AggregateID)
		want[p] = append(want[p], r.Seq)
		return nil
	}
	// Read the log as stored, past the garbage.
	end, err := log.LastSeq(ctx, eventlog.TypeOrder)
	if err != nil {
		t.Fatal(err)
	}
	err = projections.ReadLog(ctx, log, eventlog.TypeOrder, end, func(recs []eventlog.RawRecord) error {
		for _, raw := range recs {
			if decoding && raw.Seq == garbageSeq {
				continue
			}
			c, err := events.Unmarshal(raw.Data)
			if err != nil {
				return err
			}
			if err := expect(eventlog.Record{Stream: "ORDERS", Seq: raw.Seq, Commit: c}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var s projections.Sink = sink
	if decoding {
		s = decodingQuarantineSink{sink}
	}
	r, err := projections.New(log, s, nil, projections.Options{BatchSize: 5, IdlePoll: 20 * time.Millisecond, WatermarkInterval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	rctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := r.Run(rctx); err != nil {
			t.Error(err)
		}
	})
	last, err := log.LastSeq(ctx, eventlog.TypeOrder)
	if err != nil {
		t.Fatal(err)
	}
	for end := time.Now().Add(time.Minute); sink.min() < last; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(end) {
			stop()
			wg.Wait()
			t.Fatalf("checkpoints %v did not reach %d; quarantined %v", sink.cp, last, sink.quarantined)
		}
	}
	stop()
	wg.Wait()

	for p := range 4 {
		if !slices.Equal(sink.applied[p], want[p]) {
			t.Errorf("partition %d: applied %v\nwant %v", p, sink.applied[p], want[p])
		}
	}
	got := map[uint64]string{}
	for _, q := range sink.quarantined {
		if _, dup := got[q.Seq]; dup {
			t.Errorf("seq %d quarantined twice", q.Seq)
		}
		got[q.Seq] = q.AggregateID
		if q.Attempts != projections.MaxPoisonAttempts || q.Err == "" {
			t.Errorf("seq %d quarantined after %d attempts with error %q", q.Seq, q.Attempts, q.Err)
		}
		if want := log.Partition(q.AggregateID); q.Partition != want {
			t.Errorf("seq %d of %s quarantined by partition %d, want %d", q.Seq, q.AggregateID, q.Partition, want)
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(wantQuarantined) {
		t.Errorf("quarantined %v, want %v", got, wantQuarantined)
	}
	for seq := range sink.bad {
		if sink.tries[seq] != projections.MaxPoisonAttempts {
			t.Errorf("seq %d tried alone %d times, want %d", seq, sink.tries[seq], projections.MaxPoisonAttempts)
		}
	}
}
