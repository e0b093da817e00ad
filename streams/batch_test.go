package streams_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ordo-shop/ordo/eventlog"
	"github.com/ordo-shop/ordo/eventlog/logtest"
	"github.com/ordo-shop/ordo/streams"
)

// TestFetchInBatches appends to orders in several partitions and reads
// the stream back in batches, whole and partition by partition.
func TestFetchInBatches(t *testing.T) {
	s, _ := openR1(t, streams.Config{Partitions: 4})
	ctx := testCtx(t)
	want := map[int][]uint64{}
	for i := range 40 {
		id := fmt.Sprintf("o-%d", i)
		for _, r := range appendChain(t, s, id, 1+i%3) {
			p := s.Partition(id)
			want[p] = append(want[p], r.Seq)
		}
	}
	last, err := s.LastSeq(ctx, eventlog.TypeOrder)
	if err != nil {
		t.Fatal(err)
	}
	for p := range 4 {
		var got []uint64
		from := uint64(0)
		for {
			recs, err := logtest.FetchPartition(ctx, s, eventlog.TypeOrder, p, from, 7)
			if err != nil {
				t.Fatal(err)
			}
			if len(recs) > 7 {
				t.Fatalf("batch of %d, asked for 7", len(recs))
			}
			for _, r := range recs {
				if s.Partition(r.Commit.AggregateID) != p {
					t.Fatalf("partition %d got %s of partition %d", p, r.Commit.AggregateID, s.Partition(r.Commit.AggregateID))
				}
				got = append(got, r.Seq)
				from = r.Seq + 1
			}
			if len(recs) == 0 {
				break
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(want[p]) {
			t.Fatalf("partition %d: fetched %v, want %v", p, got, want[p])
		}
	}
	// The whole stream, gap-free, in batches.
	var all []uint64
	for from := uint64(1); ; {
		recs, err := s.Fetch(ctx, eventlog.TypeOrder, from, 13)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) == 0 {
			break
		}
		for _, r := range recs {
			all = append(all, r.Seq)
		}
		from = recs[len(recs)-1].Seq + 1
	}
	if len(all) != int(last) || all[0] != 1 || all[len(all)-1] != last {
		t.Fatalf("fetched %d commits of %d", len(all), last)
	}
	if recs, err := s.Fetch(ctx, eventlog.TypeOrder, last+1, 10); err != nil || len(recs) != 0 {
		t.Fatalf("past the end: %d records, %v", len(recs), err)
	}
}

func TestWatchReportsNewCommits(t *testing.T) {
	s, _ := openR1(t, streams.Config{Partitions: 4})
	ctx := testCtx(t)
	appendChain(t, s, "before", 1)
	var mu sync.Mutex
	got := map[uint64]int{}
	seen := make(chan struct{}, 100)
	stop, err := s.Watch(ctx, eventlog.TypeOrder, func(p int, seq uint64) {
		mu.Lock()
		got[seq] = p
		mu.Unlock()
		seen <- struct{}{}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	recs := appendChain(t, s, "after", 3)
	for range recs {
		select {
		case <-seen:
		case <-time.After(30 * time.Second):
			t.Fatal("no notification")
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 3 {
		t.Fatalf("notified %v, want the 3 new commits only", got)
	}
	for _, r := range recs {
		if p, ok := got[r.Seq]; !ok || p != s.Partition("after") {
			t.Fatalf("seq %d: notified %v (partition %d)", r.Seq, ok, p)
		}
	}
	stop()
	stop()
}
