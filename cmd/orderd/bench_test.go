package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ordo-shop/ordo/internal/config"
)

// BenchmarkPlaceOrder drives the whole command path over HTTP — auth,
// decoding, catalog prices, the order decider, sealing and the append —
// with 16 concurrent clients, next to raw JetStream publishes with an
// expected subject sequence of the same size on the same server, measured
// in the same run. "lazy" and "fsync" are the embedded server's sync
// policies (fsync is orderd's default).
//
//	go test ./cmd/orderd -run '^$' -bench PlaceOrder -benchtime 5000x -count 3
func BenchmarkPlaceOrder(b *testing.B) {
	for _, mode := range []string{"lazy", "always"} {
		b.Run("sync="+mode+"/http", func(b *testing.B) { benchHTTP(b, mode) })
		b.Run("sync="+mode+"/raw", func(b *testing.B) { benchRawAppend(b, mode) })
	}
}

const benchClients = 16

func benchApp(b *testing.B, mode string) *testApp {
	ta := mustStart(b, func(c *config.Config) { c.NATSSync = mode })
	ta.putSKU("TEA-250", 1999, 1_000_000_000)
	ta.putSKU("CUP-1", 500, 1_000_000_000)
	return ta
}

// runClients calls op for n = 1..b.N from benchClients goroutines, with
// the timer running only around them, and fails the benchmark if any call
// failed.
func runClients(b *testing.B, op func(n int64) error) {
	var next, failed atomic.Int64
	var once sync.Once
	var firstErr error
	b.ResetTimer()
	var wg sync.WaitGroup
	for range benchClients {
		wg.Go(func() {
			for n := next.Add(1); n <= int64(b.N); n = next.Add(1) {
				if err := op(n); err != nil {
					failed.Add(1)
					once.Do(func() { firstErr = err })
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	if f := failed.Load(); f > 0 {
		b.Fatalf("%d of %d operations failed, the first: %v", f, b.N, firstErr)
	}
}

func benchHTTP(b *testing.B, mode string) {
	ta := benchApp(b, mode)
	body := []byte(mustJSON(orderBody(line("TEA-250", 2), line("CUP-1", 1))))
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: benchClients}}
	runClients(b, func(n int64) error {
		req, _ := http.NewRequest("POST", ta.base+"/v1/orders", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+ta.alice)
		req.Header.Set("Idempotency-Key", "bench-"+strconv.FormatInt(n, 10))
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "orders/s")
}

// benchRawAppend publishes b.N messages of an order commit's size, each to
// a new subject of the ORDERS stream with expected sequence 0, from 16
// goroutines on the app's own connection: what an order placement costs
// JetStream alone.
func benchRawAppend(b *testing.B, mode string) {
	ta := benchApp(b, mode)
	js, err := jetstream.New(ta.nc)
	if err != nil {
		b.Fatal(err)
	}
	payload := make([]byte, 1100) // about the size of the benchmark's order.placed commit
	runClients(b, func(n int64) error {
		id := fmt.Sprintf("raw-%d", n)
		subj := fmt.Sprintf("order.%d.%s", n%16, id)
		_, err := js.Publish(context.Background(), subj, payload,
			jetstream.WithMsgID(id), jetstream.WithExpectLastSequencePerSubject(0))
		return err
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "appends/s")
}
