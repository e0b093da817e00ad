package sagas_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ordo-shop/ordo/eventlog"
	"github.com/ordo-shop/ordo/internal/testkit"
	"github.com/ordo-shop/ordo/sagas"
)

// BenchmarkCheckout measures complete checkouts per second, from the
// POST /v1/orders of a one-line order to its order.paid, through the HTTP
// API, the checkout process manager, the PSP simulator (real HTTP, auto
// approval, zero latency, no faults) and its signed webhook, with 16
// shoppers at a time over 20 SKUs. Next to it, in the same run, the raw
// JetStream append rate: js.Publish with Nats-Msg-Id and
// Nats-Expected-Last-Subject-Sequence of a 700-byte payload, 16 writers,
// a stream configured like ORDERS, lazy fsync like the checkout's server
// (raw_append; and each place_to_paid iteration measures 5,000 raw
// appends on a fresh server right before its checkouts and reports
// raw-appends/s and commits/raw from that pair, so a machine shared with
// other work compares like with like).
// A checkout appends 7 commits (order placed, stock reserved, payment
// requested and paid; inventory reserved; payment requested and captured)
// and stores 2 timers, so "commits/s" of the checkout is comparable with
// the raw appends/s.
//
//	go test ./sagas -run '^$' -bench Checkout -benchtime 2000x -count 3
func BenchmarkCheckout(b *testing.B) {
	b.Run("raw_append", benchRawAppend)
	b.Run("place_to_paid", benchPlaceToPaid)
}

func benchRawAppend(b *testing.B) {
	rate := rawAppendRate(b, b.N)
	b.ReportMetric(rate, "appends/s")
}

// rawAppendRate appends n raw messages from 16 writers to a fresh
// in-process server and returns the appends per second.
func rawAppendRate(b *testing.B, n int) float64 {
	_, nc := testkit.NATS(b)
	ctx := context.Background()
	js, err := jetstream.New(nc)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name: "RAW", Subjects: []string{"raw.*.*"}, Storage: jetstream.FileStorage, Discard: jetstream.DiscardNew,
		Duplicates: 2 * time.Minute, AllowDirect: true, DenyDelete: true, DenyPurge: true,
	}); err != nil {
		b.Fatal(err)
	}
	payload := []byte(strings.Repeat("x", 700))
	const writers = 16
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	var next atomic.Int64
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			last := map[string]uint64{}
			for i := 0; ; i++ {
				if next.Add(1) > int64(n) {
					return
				}
				subj := fmt.Sprintf("raw.%d.agg-%d-%d", w%16, w, i%4)
				msg := &nats.Msg{Subject: subj, Data: payload, Header: nats.Header{}}
				msg.Header.Set("Nats-Msg-Id", subj+"-"+strconv.Itoa(i))
				msg.Header.Set("Nats-Expected-Last-Subject-Sequence", strconv.FormatUint(last[subj], 10))
				ack, err := js.PublishMsg(ctx, msg)
				if err != nil {
					b.Error(err)
					return
				}
				last[subj] = ack.Sequence
			}
		}()
	}
	wg.Wait()
	return float64(n) / time.Since(start).Seconds()
}

func benchPlaceToPaid(b *testing.B) {
	// The baseline of this very iteration, measured just before it, so
	// that a machine shared with other work compares like with like.
	raw := rawAppendRate(b, 5000)
	b.StopTimer()
	e := newEnv(b, envOptions{paymentTimeout: time.Hour, reconcile: 30 * time.Minute, runtime: benchRuntime()})
	const nSKUs = 20
	for i := range nSKUs {
		e.putSKU(fmt.Sprintf("SKU-%02d", i), 1000, 1_000_000)
	}
	// Count order.paid as it reaches the log.
	var paid atomic.Int64
	done := make(chan struct{})
	target := int64(b.N)
	follow, stopFollow := context.WithCancel(context.Background())
	defer stopFollow()
	go func() {
		// Read the stream as it grows (Fetch, pausing when at its end).
		for next := uint64(1); follow.Err() == nil; {
			recs, err := e.store.Fetch(follow, eventlog.TypeOrder, next, 500)
			if err != nil || len(recs) == 0 {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			for _, r := range recs {
				for _, ev := range r.Commit.Events {
					if ev.Type == "order.paid" && paid.Add(1) == target {
						close(done)
					}
				}
				next = r.Seq + 1
			}
		}
	}()
	const shoppers = 16
	tokens := make([]string, shoppers)
	for i := range tokens {
		tokens[i] = e.token(fmt.Sprintf("cust-%d", i), "customer")
	}

	b.ResetTimer()
	b.StartTimer()
	start := time.Now()
	var wg sync.WaitGroup
	var next atomic.Int64
	for s := range shoppers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				n := next.Add(1)
				if n > int64(b.N) {
					return
				}
				body := map[string]any{
					"customer":         map[string]any{"name": "Li Wei", "email": "li@example.com"},
					"lines":            []line{{fmt.Sprintf("SKU-%02d", n%nSKUs), 1}},
					"shipping_address": map[string]any{"name": "Li Wei", "line1": "1 Tea Street", "city": "Hangzhou", "country": "CN"},
				}
				if r := e.do("POST", "/v1/orders", tokens[s], body, "Idempotency-Key", strconv.FormatInt(n, 10)); r.status != 202 {
					b.Errorf("place: %d %s", r.status, r.raw)
					return
				}
			}
		}()
	}
	wg.Wait()
	select {
	case <-done:
	case <-time.After(5 * time.Minute):
		b.Fatalf("only %d of %d orders paid", paid.Load(), b.N)
	}
	elapsed := time.Since(start).Seconds()
	b.StopTimer()
	rate := float64(b.N) / elapsed
	b.ReportMetric(rate, "checkouts/s")
	b.ReportMetric(7*rate, "commits/s")
	b.ReportMetric(raw, "raw-appends/s")
	b.ReportMetric(7*rate/raw, "commits/raw")
}

func benchRuntime() sagas.Options { return sagas.Options{Workers: 16} }
