package streams_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// BenchmarkGroupCommit asks whether group commit would pay
// under fsync-always: one writer publishes commits for different
// aggregates either one message per round trip ("single", what Append
// does) or gathered into JetStream atomic batches of 16 ("batch16"), each
// message with its own Nats-Msg-Id and expected last subject sequence.
// Both report messages per second; the ratio is the answer.
//
//	go test ./streams -run '^$' -bench GroupCommit -benchtime 3s -count 3
func BenchmarkGroupCommit(b *testing.B) {
	for _, mode := range []string{"single", "batch16"} {
		b.Run(mode, func(b *testing.B) { benchGroupCommit(b, mode) })
	}
}

func benchGroupCommit(b *testing.B, mode string) {
	nc := benchServer(b, true)
	ctx := context.Background()
	js, err := jetstream.New(nc)
	if err != nil {
		b.Fatal(err)
	}
	createRawStream(b, js, true)
	const width = 16
	payload := make([]byte, 736)
	expected := make([]uint64, width)
	subject := func(i int) string { return fmt.Sprintf("raw.%d.agg-%d", i%16, i) }
	b.ResetTimer()
	switch mode {
	case "single":
		for n := range b.N {
			i := n % width
			ack, err := js.Publish(ctx, subject(i), payload,
				jetstream.WithMsgID("m-"+strconv.Itoa(n)), jetstream.WithExpectLastSequencePerSubject(expected[i]))
			if err != nil {
				b.Fatal(err)
			}
			expected[i] = ack.Sequence
		}
	case "batch16":
		for n := 0; n < b.N; n += width {
			batch := "b-" + strconv.Itoa(n)
			for i := range width {
				m := nats.NewMsg(subject(i))
				m.Data = payload
				m.Header.Set("Nats-Batch-Id", batch)
				m.Header.Set("Nats-Batch-Sequence", strconv.Itoa(i+1))
				m.Header.Set("Nats-Msg-Id", "m-"+strconv.Itoa(n+i))
				m.Header.Set("Nats-Expected-Last-Subject-Sequence", strconv.FormatUint(expected[i], 10))
				if i < width-1 {
					if err := nc.PublishMsg(m); err != nil {
						b.Fatal(err)
					}
					continue
				}
				m.Header.Set("Nats-Batch-Commit", "1")
				resp, err := nc.RequestMsg(m, 10e9)
				if err != nil {
					b.Fatal(err)
				}
				var ack struct {
					Seq   uint64          `json:"seq"`
					Error json.RawMessage `json:"error"`
				}
				if err := json.Unmarshal(resp.Data, &ack); err != nil || ack.Error != nil {
					b.Fatalf("batch commit: %s %v", resp.Data, err)
				}
				// The batch's messages took the sequences before the
				// commit's, one each, in order.
				for k := range width {
					expected[k] = ack.Seq - uint64(width-1-k)
				}
			}
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}
