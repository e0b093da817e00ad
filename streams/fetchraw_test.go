package streams_test

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ordo-shop/ordo/eventlog"
	"github.com/ordo-shop/ordo/events"
	"github.com/ordo-shop/ordo/internal/testkit"
	"github.com/ordo-shop/ordo/streams"
)

// checkFetchRaw compares FetchRaw with Fetch from every start and for
// several batch sizes: the same sequences and the same commits.
func checkFetchRaw(t *testing.T, s *streams.Store, last uint64) {
	t.Helper()
	ctx := testCtx(t)
	for from := uint64(0); from <= last+1; from++ {
		for _, max := range []int{1, 3, 100} {
			want, err := s.Fetch(ctx, eventlog.TypeOrder, from, max)
			if err != nil {
				t.Fatal(err)
			}
			got, err := s.FetchRaw(ctx, eventlog.TypeOrder, from, max)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(want) {
				t.Fatalf("from %d max %d: %d raw commits, %d decoded", from, max, len(got), len(want))
			}
			for i := range got {
				c, err := events.Unmarshal(got[i].Data)
				if err != nil {
					t.Fatal(err)
				}
				a, _ := events.Marshal(c)
				b, _ := events.Marshal(want[i].Commit)
				if got[i].Seq != want[i].Seq || !bytes.Equal(a, b) {
					t.Fatalf("from %d max %d #%d: raw seq %d %s, decoded seq %d %s", from, max, i, got[i].Seq, a, want[i].Seq, b)
				}
			}
		}
	}
}

func TestFetchRawMatchesFetch(t *testing.T) {
	s, _ := openR1(t, streams.Config{Partitions: 4})
	for i := range 4 {
		appendChain(t, s, fmt.Sprintf("o-%d", i), 3)
	}
	checkFetchRaw(t, s, 12)
}

// A stream that does not start at 1 (created with a first sequence): the
// batch from 1 is not contiguous, and FetchRaw must read the sequences
// instead of assuming them.
func TestFetchRawOnAStreamStartingLater(t *testing.T) {
	_, nc := testkit.LogNATS(t)
	ctx := testCtx(t)
	// Open creates streams only when none exists, so all three are made
	// by hand.
	for name, prefix := range map[string]string{"ORDERS": "order", "INVENTORY": "sku", "PAYMENTS": "payment"} {
		first := uint64(1)
		if name == "ORDERS" {
			first = 5
		}
		_, err := jsOf(t, nc).CreateStream(ctx, jetstream.StreamConfig{
			Name: name, Subjects: []string{prefix + ".*.*"}, Storage: jetstream.FileStorage, Retention: jetstream.LimitsPolicy,
			MaxMsgs: -1, MaxBytes: -1, MaxMsgsPerSubject: -1, AllowDirect: true, DenyDelete: true, DenyPurge: true,
			FirstSeq: first, Metadata: map[string]string{"ordo.partitions": "4"},
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	s, err := testkit.OpenLog(ctx, nc, streams.Config{Partitions: 4})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		appendChain(t, s, fmt.Sprintf("o-%d", i), 2)
	}
	got, err := s.FetchRaw(ctx, eventlog.TypeOrder, 1, 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0].Seq != 5 || got[2].Seq != 7 {
		t.Fatalf("from 1 on a stream starting at 5: %+v", got)
	}
	checkFetchRaw(t, s, 10)
}
