package streams_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ordo-shop/ordo/streams"
)

// TestDeadLettersWhileTheyAreRemoved: reading the dead letters while
// redrives remove them never fails and never waits out its deadline for a
// dead letter that was counted when the read began and removed before it
// was delivered; once all are gone the list is empty.
func TestDeadLettersWhileTheyAreRemoved(t *testing.T) {
	ctx := testCtx(t)
	s, _ := openR1(t, streams.Config{})
	if err := s.OpenDLQ(ctx); err != nil {
		t.Fatal(err)
	}
	const n = 40
	ids := make([]uint64, 0, n)
	for i := range n {
		id, err := s.AddDeadLetter(ctx, streams.DeadLetter{Owner: "checkout", Handler: "h", Stream: "ORDERS",
			Seq: uint64(i + 1), Subject: "order.0.o", Data: []byte("{}"), Error: "boom", Attempts: 3,
			FailedAt: time.Now().UTC()}, fmt.Sprintf("dl-%d", i))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for _, id := range ids {
			if err := s.DeleteDeadLetter(ctx, id); err != nil {
				t.Errorf("delete %d: %v", id, err)
				return
			}
		}
	})
	for {
		dls, err := s.DeadLetters(ctx)
		if err != nil {
			t.Fatalf("dead letters while they are removed: %v", err)
		}
		if len(dls) == 0 {
			break
		}
	}
	wg.Wait()
	if dls, err := s.DeadLetters(ctx); err != nil || len(dls) != 0 {
		t.Fatalf("after removing every dead letter: %d, %v", len(dls), err)
	}
}
