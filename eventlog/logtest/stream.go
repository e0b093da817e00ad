package logtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"testing"
	"time"

	"github.com/ordo-shop/ordo/eventlog"
	"github.com/ordo-shop/ordo/events"
)

// typed returns commit as a commit of another aggregate type.
func typed(t *testing.T, aggType, id, commitID string, version uint64, prevHash string) *events.Commit {
	t.Helper()
	c := commit(t, id, commitID, version, 1, "")
	c.AggregateType = aggType
	if err := c.Seal(prevHash); err != nil {
		t.Fatal(err)
	}
	return c
}

// fetchUpTo reads the stream from sequence from up to sequence to with
// fetch, asking again where a batch ended (a lagging replica may answer
// a batch short) until it has them all or the test's context ends, and
// checks that the batches are gap-free from from on.
func fetchUpTo[R any](t *testing.T, what string, from, to uint64, fetch func(from uint64, max int) ([]R, error), seq func(R) uint64) []R {
	t.Helper()
	ctx := testCtx(t)
	var out []R
	for next := from; next <= to; {
		batch, err := fetch(next, int(to-next+1))
		if err != nil {
			t.Fatalf("%s from %d: %v", what, next, err)
		}
		for _, r := range batch {
			if seq(r) != next {
				t.Fatalf("%s: seq %d where %d was due (gap-free from %d)", what, seq(r), next, from)
			}
			if next > to {
				t.Fatalf("%s of %d from %d: more than asked for", what, to-from+1, from)
			}
			out = append(out, r)
			next++
		}
		if len(batch) == 0 {
			select {
			case <-ctx.Done():
				t.Fatalf("%s: no commit at seq %d, appended before the read", what, next)
			case <-time.After(10 * time.Millisecond):
			}
		}
	}
	return out
}

func recSeq(r eventlog.Record) uint64    { return r.Seq }
func rawSeq(r eventlog.RawRecord) uint64 { return r.Seq }

func testInvalid(t *testing.T, s eventlog.Log) {
	ctx := testCtx(t)
	for _, id := range []string{"", "a.b", "a*", "a>", "a b", string(make([]byte, 129))} {
		if _, err := s.Load(ctx, eventlog.TypeOrder, id, 0); !errors.Is(err, eventlog.ErrInvalidID) {
			t.Errorf("load of id %q: %v, want ErrInvalidID", id, err)
		}
		if _, _, err := s.Last(ctx, eventlog.TypeOrder, id); !errors.Is(err, eventlog.ErrInvalidID) {
			t.Errorf("last of id %q: %v, want ErrInvalidID", id, err)
		}
	}
	if _, err := s.Load(ctx, "customer", newID("x"), 0); !errors.Is(err, eventlog.ErrUnknownType) {
		t.Errorf("load of an unknown type: %v, want ErrUnknownType", err)
	}
	if _, err := s.LastSeq(ctx, "customer"); !errors.Is(err, eventlog.ErrUnknownType) {
		t.Errorf("last seq of an unknown type: %v, want ErrUnknownType", err)
	}
	if _, err := s.Fetch(ctx, "customer", 1, 10); !errors.Is(err, eventlog.ErrUnknownType) {
		t.Errorf("fetch of an unknown type: %v, want ErrUnknownType", err)
	}
	c := commit(t, "a.b", "bad-id", 1, 1, "")
	if _, err := s.Append(ctx, c, 0); !errors.Is(err, eventlog.ErrInvalidID) {
		t.Errorf("append to id a.b: %v, want ErrInvalidID", err)
	}
	c = typed(t, "customer", newID("t"), newID("c"), 1, "")
	if _, err := s.Append(ctx, c, 0); !errors.Is(err, eventlog.ErrUnknownType) {
		t.Errorf("append of an unknown type: %v, want ErrUnknownType", err)
	}
	if _, err := s.Append(ctx, nil, 0); !errors.Is(err, events.ErrInvalidCommit) {
		t.Errorf("append of nil: %v, want events.ErrInvalidCommit", err)
	}
	unsealed := commit(t, newID("u"), newID("c"), 1, 1, "")
	unsealed.Events = nil
	if _, err := s.Append(ctx, unsealed, 0); !errors.Is(err, events.ErrInvalidCommit) {
		t.Errorf("append of a commit without events: %v, want events.ErrInvalidCommit", err)
	}
}

// testStreams checks that each aggregate type has a stream of its own,
// numbered without gaps, that positions name it, and that Fetch reads it
// in log order from any sequence.
func testStreams(t *testing.T, s eventlog.Log) {
	ctx := testCtx(t)
	type appended struct {
		res eventlog.AppendResult
		c   *events.Commit
	}
	got := map[string][]appended{}
	for _, typ := range []string{eventlog.TypeOrder, eventlog.TypeInventory, eventlog.TypePayment} {
		want, err := eventlog.StreamOf(typ)
		if err != nil {
			t.Fatal(err)
		}
		before, err := s.LastSeq(ctx, typ)
		if err != nil {
			t.Fatalf("last seq of %s: %v", typ, err)
		}
		for i := range 3 {
			id := newID(typ)
			c := typed(t, typ, id, id+"-c1", 1, "")
			res := mustAppend(t, s, c, 0)
			if res.Stream != want {
				t.Fatalf("%s commit stored in stream %q, want %q", typ, res.Stream, want)
			}
			if i == 0 && res.Seq <= before {
				t.Fatalf("%s: appended at seq %d, the stream's last was %d", typ, res.Seq, before)
			}
			got[typ] = append(got[typ], appended{res, c})
		}
		last, err := s.LastSeq(ctx, typ)
		if err != nil {
			t.Fatal(err)
		}
		if mine := got[typ][2].res.Seq; last < mine {
			t.Fatalf("%s: last seq %d after an append at %d", typ, last, mine)
		}
	}
	for typ, as := range got {
		from := as[0].res.Seq
		recs := fetchUpTo(t, "fetch "+typ, from, as[2].res.Seq, func(from uint64, max int) ([]eventlog.Record, error) {
			return s.Fetch(ctx, typ, from, max)
		}, recSeq)
		for i, r := range recs {
			if r.Seq != from+uint64(i) {
				t.Fatalf("fetch %s: record %d at seq %d, want %d (gap-free)", typ, i, r.Seq, from+uint64(i))
			}
			if r.Commit.AggregateType != typ || r.Stream != as[0].res.Stream {
				t.Fatalf("fetch %s: record at %d is a %s commit in %s", typ, r.Seq, r.Commit.AggregateType, r.Stream)
			}
		}
		for _, a := range as {
			r := recs[a.res.Seq-from]
			if r.Commit.CommitID != a.c.CommitID || r.Commit.Hash != a.c.Hash {
				t.Fatalf("fetch %s: seq %d holds %s, appended %s there", typ, a.res.Seq, r.Commit.CommitID, a.c.CommitID)
			}
		}
		// A batch of one, and from 0 (which counts as 1): at most one
		// commit, the one asked for.
		one, err := s.Fetch(ctx, typ, as[1].res.Seq, 1)
		if err != nil || len(one) > 1 || (len(one) == 1 && one[0].Seq != as[1].res.Seq) {
			t.Fatalf("fetch %s of one at %d: %d records, %v", typ, as[1].res.Seq, len(one), err)
		}
		first, err := s.Fetch(ctx, typ, 0, 1)
		if err != nil || len(first) > 1 || (len(first) == 1 && first[0].Seq != 1) {
			t.Fatalf("fetch %s from 0: %d records, %v; want at most the commit at seq 1", typ, len(first), err)
		}
		last, err := s.LastSeq(ctx, typ)
		if err != nil {
			t.Fatal(err)
		}
		if past, err := s.Fetch(ctx, typ, last+1, 10); err != nil || len(past) != 0 {
			t.Fatalf("fetch %s past the end: %d records, %v", typ, len(past), err)
		}
		if _, err := s.Fetch(ctx, typ, 1, 0); err == nil {
			t.Fatalf("fetch %s of 0 commits: no error", typ)
		}
	}
}

func testFetchRaw(t *testing.T, s eventlog.Log) {
	ctx := testCtx(t)
	var first, last uint64
	for i := range 5 {
		id := newID("raw")
		r := mustAppend(t, s, commit(t, id, id+"-c1", 1, i%3+1, ""), 0)
		if i == 0 {
			first = r.Seq
		}
		last = r.Seq
	}
	n := int(last - first + 1)
	recs := fetchUpTo(t, "fetch", first, last, func(from uint64, max int) ([]eventlog.Record, error) {
		return s.Fetch(ctx, eventlog.TypeOrder, from, max)
	}, recSeq)
	raws := fetchUpTo(t, "fetch raw", first, last, func(from uint64, max int) ([]eventlog.RawRecord, error) {
		return s.FetchRaw(ctx, eventlog.TypeOrder, from, max)
	}, rawSeq)
	if len(raws) != len(recs) || len(raws) != n {
		t.Fatalf("fetch raw: %d records, fetch: %d, want %d", len(raws), len(recs), n)
	}
	for i, raw := range raws {
		if raw.Seq != recs[i].Seq {
			t.Fatalf("raw record %d at seq %d, decoded at %d", i, raw.Seq, recs[i].Seq)
		}
		c, err := events.Unmarshal(raw.Data)
		if err != nil {
			t.Fatalf("raw record at %d: %v", raw.Seq, err)
		}
		if c.CommitID != recs[i].Commit.CommitID || c.Hash != recs[i].Commit.Hash {
			t.Fatalf("raw record at %d is %s, fetch says %s", raw.Seq, c.CommitID, recs[i].Commit.CommitID)
		}
		want, err := events.Marshal(recs[i].Commit)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(raw.Data, want) {
			t.Fatalf("raw record at %d is not the commit's canonical encoding", raw.Seq)
		}
	}
	if _, err := s.FetchRaw(ctx, eventlog.TypeOrder, 1, 0); err == nil {
		t.Fatal("fetch raw of 0 commits: no error")
	}
}

func testPartitions(t *testing.T, s eventlog.Log) {
	n := s.Partitions()
	if n < 1 {
		t.Fatalf("%d partitions", n)
	}
	seen := map[int]bool{}
	for i := range 200 {
		id := fmt.Sprintf("order-%d", i)
		p := s.Partition(id)
		if p != eventlog.Partition(id, n) || p < 0 || p >= n {
			t.Fatalf("partition of %s: %d, eventlog.Partition says %d of %d", id, p, eventlog.Partition(id, n), n)
		}
		seen[p] = true
	}
	if n > 1 && len(seen) < 2 {
		t.Fatalf("200 ids fell into %d of %d partitions", len(seen), n)
	}
	// The rule is part of the log's format: read models record
	// partitions, and the JetStream log names subjects by them. Golden
	// values, and FNV-1a as hash/fnv computes it.
	for id, want := range map[string]int{"o-123": 7, "TEA-250": 7, "a": 12, "01JABCDXYZ": 15} {
		if got := eventlog.Partition(id, 16); got != want {
			t.Errorf("partition of %s among 16 is %d, it was %d", id, got, want)
		}
	}
	for i := range 200 {
		id := fmt.Sprintf("id-%d", i)
		h := fnv.New32a()
		h.Write([]byte(id))
		if got, want := eventlog.Partition(id, 16), int(h.Sum32()%16); got != want {
			t.Fatalf("partition of %s among 16 is %d, FNV-1a says %d", id, got, want)
		}
	}
}

func testWatch(t *testing.T, s eventlog.Log) {
	ctx := testCtx(t)
	type note struct {
		p   int
		seq uint64
	}
	notes := make(chan note, 100)
	stop, err := s.Watch(ctx, eventlog.TypeOrder, func(p int, seq uint64) {
		select {
		case notes <- note{p, seq}:
		default:
		}
	})
	if err != nil {
		t.Fatalf("watch: %v", err)
	}
	defer stop()
	id := newID("watch")
	res := mustAppend(t, s, commit(t, id, id+"-c1", 1, 1, ""), 0)
	// A liveness bound only: a notification that never comes fails.
	deadline := time.After(30 * time.Second)
	for {
		select {
		case n := <-notes:
			if n.seq != res.Seq {
				continue // another test's commit on a shared log
			}
			if n.p != s.Partition(id) {
				t.Fatalf("watch: commit at %d reported in partition %d, want %d", n.seq, n.p, s.Partition(id))
			}
			stop()
			stop() // twice is fine
			return
		case <-deadline:
			t.Fatalf("watch: no notification of the commit at seq %d", res.Seq)
		}
	}
}

func testListIDs(t *testing.T, s eventlog.Log) {
	ctx := testCtx(t)
	var want []string
	for range 3 {
		id := newID("sku")
		mustAppend(t, s, typed(t, eventlog.TypeInventory, id, id+"-c1", 1, ""), 0)
		want = append(want, id)
	}
	ids, err := s.ListIDs(ctx, eventlog.TypeInventory)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range want {
		if !slices.Contains(ids, id) {
			t.Fatalf("list ids: %s missing", id)
		}
	}
	if slices.Contains(ids, newID("never")) {
		t.Fatal("list ids: lists an id without commits")
	}
}

// Replay calls fn for every commit of an aggregate type's stream from
// sequence from (0 counts as 1) up to the stream's last sequence when
// Replay was called, in log order, reading through Fetch (and asking
// again when a lagging replica answers a batch short). It stops at fn's
// first error and returns it.
func Replay(ctx context.Context, src eventlog.StreamReader, aggType string, from uint64, fn func(eventlog.Record) error) error {
	last, err := src.LastSeq(ctx, aggType)
	if err != nil {
		return err
	}
	from = max(from, 1)
	var empty time.Time // since when batches come back empty
	for from <= last {
		recs, err := src.Fetch(ctx, aggType, from, int(min(last-from+1, 1000)))
		if err != nil {
			return err
		}
		if len(recs) == 0 {
			// A lagging replica answered: ask again, for a while.
			if empty.IsZero() {
				empty = time.Now()
			} else if time.Since(empty) > 10*time.Second {
				return fmt.Errorf("replay %s: the stream ends before seq %d, its last was %d", aggType, from, last)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(10 * time.Millisecond):
			}
			continue
		}
		empty = time.Time{}
		for _, r := range recs {
			if r.Seq > last {
				return nil
			}
			if err := fn(r); err != nil {
				return err
			}
		}
		from = recs[len(recs)-1].Seq + 1
	}
	return nil
}

// FetchPartition returns up to max commits of one partition of an
// aggregate type's stream from sequence from (0 counts as 1) on, in log
// order, reading the stream through Fetch.
func FetchPartition(ctx context.Context, src eventlog.StreamReader, aggType string, partition int, from uint64, max int) ([]eventlog.Record, error) {
	var out []eventlog.Record
	err := Replay(ctx, src, aggType, from, func(r eventlog.Record) error {
		if len(out) == max {
			return errEnough
		}
		if src.Partition(r.Commit.AggregateID) == partition {
			out = append(out, r)
		}
		return nil
	})
	if errors.Is(err, errEnough) {
		err = nil
	}
	return out, err
}

var errEnough = errors.New("enough")
