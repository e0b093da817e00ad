package logtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ordo-shop/ordo/eventlog"
	"github.com/ordo-shop/ordo/events"
)

// Sizes of the concurrency case: racers goroutines append commits to one
// aggregate until it has raceCommits of them.
const (
	racers      = 32
	raceCommits = 64
)

// Run runs the acceptance suite as subtests. newLog is called once per
// subtest; it may return the same log each time (every subtest uses
// fresh ids and checks only the commits it appended).
func Run(t *testing.T, newLog func(t *testing.T) eventlog.Log) {
	cases := []struct {
		name string
		fn   func(t *testing.T, s eventlog.Log)
	}{
		{"AppendNewAndLoad", testAppendNewAndLoad},
		{"ExpectedSeqConflict", testExpectedSeqConflict},
		{"RetryAfterSuccessIsDuplicate", testRetryAfterSuccess},
		{"LoadAfterSeq", testLoadAfterSeq},
		{"InterleavedAggregatesKeepOrder", testInterleaved},
		{"ConcurrentWritersOneAggregate", testRace},
		{"InvalidIDsAndTypes", testInvalid},
		{"StreamsAreSeparateAndGapFree", testStreams},
		{"FetchRawIsFetchUndecoded", testFetchRaw},
		{"PartitionsAreStable", testPartitions},
		{"WatchReportsNewCommits", testWatch},
		{"ListIDs", testListIDs},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.fn(t, newLog(t))
		})
	}
}

var idSeq atomic.Uint64

// newID returns an aggregate id no other test in this process uses.
func newID(prefix string) string {
	return fmt.Sprintf("%s-%d-%d", prefix, time.Now().UnixNano(), idSeq.Add(1))
}

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// commit builds a sealed commit holding n minimal events, the first at
// version.
func commit(t *testing.T, id, commitID string, version uint64, n int, prevHash string) *events.Commit {
	t.Helper()
	c := &events.Commit{
		CommitID:      commitID,
		AggregateType: eventlog.TypeOrder,
		AggregateID:   id,
		Version:       version,
		Metadata: events.Metadata{
			CorrelationID: "corr-" + commitID,
			Actor:         "logtest",
			RecordedAt:    time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		},
	}
	for i := range n {
		data, err := json.Marshal(map[string]uint64{"n": version + uint64(i)})
		if err != nil {
			t.Fatal(err)
		}
		c.Events = append(c.Events, events.Event{Type: "test.happened", SchemaVersion: 1, Data: data})
	}
	if err := c.Seal(prevHash); err != nil {
		t.Fatal(err)
	}
	return c
}

func mustAppend(t *testing.T, s eventlog.Log, c *events.Commit, expected uint64) eventlog.AppendResult {
	t.Helper()
	res, err := s.Append(testCtx(t), c, expected)
	if err != nil {
		t.Fatalf("append %s v%d at expected seq %d: %v", c.CommitID, c.Version, expected, err)
	}
	if res.Duplicate {
		t.Fatalf("append %s: reported as duplicate on first append", c.CommitID)
	}
	if res.Seq == 0 {
		t.Fatalf("append %s: sequence 0", c.CommitID)
	}
	return res
}

func mustLoad(t *testing.T, s eventlog.Log, id string, after uint64) []eventlog.Record {
	t.Helper()
	recs, err := s.Load(testCtx(t), eventlog.TypeOrder, id, after)
	if err != nil {
		t.Fatalf("load %s after %d: %v", id, after, err)
	}
	return recs
}

func commitsOf(recs []eventlog.Record) []*events.Commit {
	cs := make([]*events.Commit, len(recs))
	for i, r := range recs {
		cs[i] = r.Commit
	}
	return cs
}

func testAppendNewAndLoad(t *testing.T, s eventlog.Log) {
	ctx := testCtx(t)
	id := newID("new")

	if recs := mustLoad(t, s, id, 0); len(recs) != 0 {
		t.Fatalf("load of a new aggregate: %d records, want 0", len(recs))
	}
	if _, ok, err := s.Last(ctx, eventlog.TypeOrder, id); err != nil || ok {
		t.Fatalf("last of a new aggregate: ok=%v err=%v, want none", ok, err)
	}

	c1 := commit(t, id, id+"-c1", 1, 2, "")
	r1 := mustAppend(t, s, c1, 0)
	c2 := commit(t, id, id+"-c2", 3, 1, c1.Hash)
	r2 := mustAppend(t, s, c2, r1.Seq)
	if r2.Seq <= r1.Seq {
		t.Fatalf("second commit at seq %d, first at %d", r2.Seq, r1.Seq)
	}

	recs := mustLoad(t, s, id, 0)
	if len(recs) != 2 {
		t.Fatalf("load: %d records, want 2", len(recs))
	}
	for i, want := range []struct {
		res eventlog.AppendResult
		c   *events.Commit
	}{{r1, c1}, {r2, c2}} {
		got := recs[i]
		if got.Seq != want.res.Seq || got.Stream != want.res.Stream {
			t.Errorf("record %d at %s/%d, appended at %s/%d", i, got.Stream, got.Seq, want.res.Stream, want.res.Seq)
		}
		if got.Commit.CommitID != want.c.CommitID || got.Commit.Hash != want.c.Hash || len(got.Commit.Events) != len(want.c.Events) {
			t.Errorf("record %d: got commit %s (%s), want %s (%s)", i, got.Commit.CommitID, got.Commit.Hash, want.c.CommitID, want.c.Hash)
		}
		if err := got.Commit.VerifyHash(); err != nil {
			t.Errorf("record %d: %v", i, err)
		}
	}
	if breaks := events.VerifyChain(commitsOf(recs)); len(breaks) > 0 {
		t.Errorf("chain: %v", breaks)
	}

	last, ok, err := s.Last(ctx, eventlog.TypeOrder, id)
	if err != nil || !ok {
		t.Fatalf("last: ok=%v err=%v", ok, err)
	}
	if last.Seq != r2.Seq || last.Commit.CommitID != c2.CommitID {
		t.Errorf("last: %s at %d, want %s at %d", last.Commit.CommitID, last.Seq, c2.CommitID, r2.Seq)
	}
}

func testExpectedSeqConflict(t *testing.T, s eventlog.Log) {
	ctx := testCtx(t)
	id := newID("conflict")
	c1 := commit(t, id, id+"-c1", 1, 1, "")
	r1 := mustAppend(t, s, c1, 0)

	// A second "new" aggregate with the same id must be refused.
	other := commit(t, id, id+"-other", 1, 1, "")
	if _, err := s.Append(ctx, other, 0); !errors.Is(err, eventlog.ErrConflict) {
		t.Fatalf("append to an existing aggregate expecting none: %v, want ErrConflict", err)
	}
	// So must a stale expected sequence, once the aggregate moved on.
	c2 := commit(t, id, id+"-c2", 2, 1, c1.Hash)
	mustAppend(t, s, c2, r1.Seq)
	stale := commit(t, id, id+"-stale", 2, 1, c1.Hash)
	if _, err := s.Append(ctx, stale, r1.Seq); !errors.Is(err, eventlog.ErrConflict) {
		t.Fatalf("append at a stale expected seq: %v, want ErrConflict", err)
	}
	// A sequence in the future is a conflict too.
	future := commit(t, id, id+"-future", 3, 1, c2.Hash)
	if _, err := s.Append(ctx, future, r1.Seq+1000); !errors.Is(err, eventlog.ErrConflict) {
		t.Fatalf("append at a future expected seq: %v, want ErrConflict", err)
	}

	recs := mustLoad(t, s, id, 0)
	if len(recs) != 2 || recs[0].Commit.CommitID != c1.CommitID || recs[1].Commit.CommitID != c2.CommitID {
		t.Fatalf("after conflicts the aggregate holds %d records, want exactly c1, c2", len(recs))
	}
}

func testRetryAfterSuccess(t *testing.T, s eventlog.Log) {
	ctx := testCtx(t)
	id := newID("retry")
	c1 := commit(t, id, id+"-c1", 1, 1, "")
	r1 := mustAppend(t, s, c1, 0)

	// The client lost the ack and retries the same commit with the same
	// expected sequence.
	for i := range 2 {
		res, err := s.Append(ctx, c1, 0)
		if err != nil {
			t.Fatalf("retry %d of a stored commit: %v, want success", i+1, err)
		}
		if !res.Duplicate || res.Seq != r1.Seq || res.Stream != r1.Stream {
			t.Fatalf("retry %d: %+v, want duplicate of %+v", i+1, res, r1)
		}
	}

	// Same for a later commit of the aggregate.
	c2 := commit(t, id, id+"-c2", 2, 1, c1.Hash)
	r2 := mustAppend(t, s, c2, r1.Seq)
	res, err := s.Append(ctx, c2, r1.Seq)
	if err != nil || !res.Duplicate || res.Seq != r2.Seq {
		t.Fatalf("retry of c2: %+v, %v; want duplicate at %d", res, err, r2.Seq)
	}

	if recs := mustLoad(t, s, id, 0); len(recs) != 2 {
		t.Fatalf("after retries the aggregate holds %d records, want 2", len(recs))
	}
}

func testLoadAfterSeq(t *testing.T, s eventlog.Log) {
	id, noise := newID("after"), newID("noise")
	var (
		prev, noisePrev string
		seq, noiseSeq   uint64
		seqs            []uint64
	)
	for v := uint64(1); v <= 5; v++ {
		c := commit(t, id, fmt.Sprintf("%s-c%d", id, v), v, 1, prev)
		seq = mustAppend(t, s, c, seq).Seq
		seqs = append(seqs, seq)
		prev = c.Hash
		// Another aggregate's commit between each two of id's.
		n := commit(t, noise, fmt.Sprintf("%s-c%d", noise, v), v, 1, noisePrev)
		noiseSeq = mustAppend(t, s, n, noiseSeq).Seq
		noisePrev = n.Hash
	}
	check := func(after uint64, from int) {
		t.Helper()
		recs := mustLoad(t, s, id, after)
		if len(recs) != len(seqs)-from {
			t.Fatalf("load after %d: %d records, want %d", after, len(recs), len(seqs)-from)
		}
		for j, r := range recs {
			if r.Seq != seqs[from+j] {
				t.Fatalf("load after %d: record %d at seq %d, want %d", after, j, r.Seq, seqs[from+j])
			}
			if r.Commit.Version != uint64(from+j+1) || r.Commit.AggregateID != id {
				t.Fatalf("load after %d: record %d is %s v%d, want %s v%d", after, j, r.Commit.AggregateID, r.Commit.Version, id, from+j+1)
			}
		}
	}
	check(0, 0)
	for i, sq := range seqs {
		check(sq, i+1)   // exactly at one of id's commits
		check(sq+1, i+1) // at the other aggregate's commit that follows it
	}
}

func testInterleaved(t *testing.T, s eventlog.Log) {
	const aggregates, commits = 8, 6
	ids := make([]string, aggregates)
	prev := make([]string, aggregates)
	seqs := make([]uint64, aggregates)
	next := make([]uint64, aggregates)
	for i := range ids {
		ids[i] = newID(fmt.Sprintf("mix%d", i))
		next[i] = 1
	}
	// Round-robin: every aggregate's commits are interleaved with all the
	// others' in the log; commits hold one to three events.
	for k := 1; k <= commits; k++ {
		for i, id := range ids {
			c := commit(t, id, fmt.Sprintf("%s-c%d", id, k), next[i], (k+i)%3+1, prev[i])
			seqs[i] = mustAppend(t, s, c, seqs[i]).Seq
			prev[i], next[i] = c.Hash, c.LastVersion()+1
		}
	}
	for i, id := range ids {
		recs := mustLoad(t, s, id, 0)
		if len(recs) != commits {
			t.Fatalf("%s: %d records, want %d", id, len(recs), commits)
		}
		for j, r := range recs {
			if r.Commit.AggregateID != id {
				t.Fatalf("%s: record %d belongs to %s", id, j, r.Commit.AggregateID)
			}
			if j > 0 && r.Seq <= recs[j-1].Seq {
				t.Fatalf("%s: sequences out of order: %d after %d", id, r.Seq, recs[j-1].Seq)
			}
			if want := fmt.Sprintf("%s-c%d", id, j+1); r.Commit.CommitID != want {
				t.Fatalf("%s: record %d is %s, want %s", id, j, r.Commit.CommitID, want)
			}
		}
		if recs[commits-1].Seq != seqs[i] {
			t.Fatalf("%s: last record at %d, last append at %d", id, recs[commits-1].Seq, seqs[i])
		}
		if breaks := events.VerifyChain(commitsOf(recs)); len(breaks) > 0 {
			t.Fatalf("%s: chain: %v", id, breaks)
		}
	}
}

// testRace has many writers fight over one aggregate with the optimistic
// loop every command handler runs; the log must come out as exactly one
// commit per version with an unbroken hash chain.
func testRace(t *testing.T, s eventlog.Log) {
	ctx := testCtx(t)
	id := newID("race")

	var (
		mu        sync.Mutex
		won       = map[uint64]string{} // version -> commit id that was acknowledged
		conflicts atomic.Int64
		wg        sync.WaitGroup
		errc      = make(chan error, racers)
	)
	for w := range racers {
		wg.Go(func() {
			for attempt := 0; ; attempt++ {
				if ctx.Err() != nil {
					errc <- fmt.Errorf("writer %d: %w", w, ctx.Err())
					return
				}
				last, ok, err := s.Last(ctx, eventlog.TypeOrder, id)
				if errors.Is(err, eventlog.ErrLeaderUnavailable) {
					continue // no answer in time on a busy machine: ask again
				}
				if err != nil {
					errc <- fmt.Errorf("writer %d: last: %w", w, err)
					return
				}
				var version, expected uint64 = 1, 0
				prev := ""
				if ok {
					version, expected, prev = last.Commit.LastVersion()+1, last.Seq, last.Commit.Hash
				}
				if version > raceCommits {
					return
				}
				c := &events.Commit{
					CommitID:      fmt.Sprintf("%s-w%d-a%d", id, w, attempt),
					AggregateType: eventlog.TypeOrder,
					AggregateID:   id,
					Version:       version,
					Events:        []events.Event{{Type: "test.happened", SchemaVersion: 1, Data: json.RawMessage(fmt.Sprintf(`{"n":%d,"writer":%d}`, version, w))}},
					Metadata:      events.Metadata{Actor: fmt.Sprintf("writer-%d", w), RecordedAt: time.Unix(int64(version), 0).UTC()},
				}
				if err := c.Seal(prev); err != nil {
					errc <- err
					return
				}
				res, err := s.Append(ctx, c, expected)
				if errors.Is(err, eventlog.ErrConflict) {
					conflicts.Add(1)
					continue
				}
				if errors.Is(err, eventlog.ErrLeaderUnavailable) {
					continue // nothing was stored: try again from the last version
				}
				if err != nil {
					errc <- fmt.Errorf("writer %d: append v%d: %w", w, version, err)
					return
				}
				if res.Duplicate {
					errc <- fmt.Errorf("writer %d: fresh commit %s reported as duplicate", w, c.CommitID)
					return
				}
				mu.Lock()
				if other, dup := won[version]; dup {
					mu.Unlock()
					errc <- fmt.Errorf("version %d acknowledged twice: %s and %s", version, other, c.CommitID)
					return
				}
				won[version] = c.CommitID
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
	if t.Failed() {
		return
	}

	recs := mustLoad(t, s, id, 0)
	if len(recs) != raceCommits {
		t.Fatalf("log holds %d commits, want %d", len(recs), raceCommits)
	}
	if len(won) != raceCommits {
		t.Fatalf("%d appends acknowledged, want %d", len(won), raceCommits)
	}
	for i, r := range recs {
		v := uint64(i + 1)
		if r.Commit.Version != v {
			t.Fatalf("commit %d has version %d", i, r.Commit.Version)
		}
		if won[v] != r.Commit.CommitID {
			t.Fatalf("version %d: log holds %s, writer was told %s", v, r.Commit.CommitID, won[v])
		}
	}
	if breaks := events.VerifyChain(commitsOf(recs)); len(breaks) > 0 {
		t.Fatalf("hash chain broken: %v", breaks)
	}
	t.Logf("%d writers, %d commits, %d conflicts retried", racers, raceCommits, conflicts.Load())
}
