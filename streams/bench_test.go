package streams_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ordo-shop/ordo/eventlog"
	"github.com/ordo-shop/ordo/events"
	"github.com/ordo-shop/ordo/internal/local/natsembed"
	"github.com/ordo-shop/ordo/internal/testkit"
	"github.com/ordo-shop/ordo/streams"
)

// aggregatesPerWriter is how many aggregates each benchmark writer owns
// and appends to in turn.
const aggregatesPerWriter = 4

// BenchmarkAppend measures Store.Append next to a raw JetStream baseline
// (js.Publish with Nats-Msg-Id and Nats-Expected-Last-Subject-Sequence of
// an equally sized payload, on a stream configured like ORDERS), with 1
// and 16 writers, under lazy fsync and fsync-always. Every writer appends
// successive versions of its own aggregates and tracks their expected
// sequences itself, so there are no conflicts. Each run gets a fresh
// in-process server (client and server share the process and its two
// cores, as in the local default); servers, streams and commit bodies are
// set up before the timer starts.
//
//	go test ./streams -run '^$' -bench Append -benchtime 3s -count 3
func BenchmarkAppend(b *testing.B) {
	for _, sync := range []struct {
		name   string
		always bool
	}{{"lazy", false}, {"fsync", true}} {
		for _, writers := range []int{1, 16} {
			name := fmt.Sprintf("%s/writers=%d", sync.name, writers)
			b.Run(name+"/store", func(b *testing.B) { benchStore(b, sync.always, writers) })
			b.Run(name+"/raw", func(b *testing.B) { benchRaw(b, sync.always, writers) })
		}
	}
}

func benchServer(b *testing.B, syncAlways bool) *nats.Conn {
	b.Helper()
	_, nc := testkit.LogNATS(b, func(o *natsembed.Options) { o.SyncAlways = syncAlways })
	return nc
}

// benchCommit is a commit of the size a checkout produces: one event with
// a few lines of data and full metadata.
func benchCommit(b *testing.B, id string, version uint64, prevHash string) *events.Commit {
	data := fmt.Sprintf(`{"customer_id":"cus-%s","lines":[{"sku":"TEA-250","qty":2,"unit_price":{"amount":1999,"currency":"CNY"}},{"sku":"CUP-01","qty":1,"unit_price":{"amount":4999,"currency":"CNY"}}],"total":{"amount":8997,"currency":"CNY"},"n":%d}`, id, version)
	c := &events.Commit{
		CommitID:      fmt.Sprintf("%s-v%d", id, version),
		AggregateType: eventlog.TypeOrder,
		AggregateID:   id,
		Version:       version,
		Events:        []events.Event{{Type: "order.placed", SchemaVersion: 1, Data: json.RawMessage(data)}},
		Metadata: events.Metadata{
			CorrelationID: "corr-" + id,
			CausationID:   fmt.Sprintf("cmd-%s-%d", id, version),
			Actor:         "customer:cus-" + id,
			RecordedAt:    time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
			Traceparent:   "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		},
	}
	if err := c.Seal(prevHash); err != nil {
		b.Fatal(err)
	}
	return c
}

// share splits n iterations among writers.
func share(n, writers, w int) int {
	s := n / writers
	if w < n%writers {
		s++
	}
	return s
}

// runWriters runs fn(w, n) for every writer w in its own goroutine, with
// n its share of b.N, timing only that, and reports appends per second.
func runWriters(b *testing.B, writers int, fn func(w, n int) error) {
	b.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	b.ResetTimer()
	for w := range writers {
		wg.Go(func() {
			if err := fn(w, share(b.N, writers, w)); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	close(errs)
	for err := range errs {
		b.Error(err)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "appends/s")
}

// writerAggregate is one aggregate a benchmark writer appends to.
type writerAggregate struct {
	template *events.Commit // store: the commit body, prepared before the timer
	subject  string         // raw: the subject
	idPrefix string         // commit id (= message id) without the version
	version  uint64         // the version last appended
	expected uint64         // the stream sequence of its last commit
}

// writerAggregates prepares writer w's aggregates.
func writerAggregates(b *testing.B, w int) []writerAggregate {
	aggs := make([]writerAggregate, aggregatesPerWriter)
	for k := range aggs {
		id := fmt.Sprintf("w%d-a%d", w, k)
		aggs[k] = writerAggregate{
			template: benchCommit(b, id, 1, strings.Repeat("0", 64)),
			subject:  fmt.Sprintf("raw.%d.%s", k, id),
			idPrefix: id + "-v",
		}
	}
	return aggs
}

// benchStore appends through Store.Append. Per append the writer copies
// its aggregate's prepared commit and sets the next version and commit id;
// the hash is not recomputed (sealing is the command handler's cost, and
// the store does not verify hashes).
func benchStore(b *testing.B, syncAlways bool, writers int) {
	nc := benchServer(b, syncAlways)
	ctx := context.Background()
	s, err := testkit.OpenLog(ctx, nc, streams.Config{})
	if err != nil {
		b.Fatal(err)
	}
	aggs := make([][]writerAggregate, writers)
	for w := range writers {
		aggs[w] = writerAggregates(b, w)
	}
	runWriters(b, writers, func(w, n int) error {
		mine := aggs[w]
		for i := range n {
			a := &mine[i%len(mine)]
			a.version++
			c := *a.template
			c.Version = a.version
			c.CommitID = a.idPrefix + strconv.FormatUint(a.version, 10)
			res, err := s.Append(ctx, &c, a.expected)
			if err != nil {
				return err
			}
			a.expected = res.Seq
		}
		return nil
	})
	if data, err := events.Marshal(aggs[0][0].template); err == nil {
		b.ReportMetric(float64(len(data)), "payload-bytes")
	}
}

// createRawStream makes the baselines' stream RAW (subjects raw.*.*),
// configured like ORDERS; atomic also allows atomic batch publishing.
func createRawStream(b *testing.B, js jetstream.JetStream, atomic bool) {
	b.Helper()
	if _, err := js.CreateStream(context.Background(), jetstream.StreamConfig{
		Name: "RAW", Subjects: []string{"raw.*.*"}, Storage: jetstream.FileStorage,
		MaxMsgs: -1, MaxBytes: -1, MaxMsgsPerSubject: -1, Discard: jetstream.DiscardNew,
		Duplicates: streams.DefaultDuplicateWindow, AllowDirect: true, DenyDelete: true, DenyPurge: true,
		AllowAtomicPublish: atomic,
	}); err != nil {
		b.Fatal(err)
	}
}

// benchRaw is the baseline: js.Publish of a payload as large as the
// store's commits, with the same two headers, to a stream configured like
// ORDERS.
func benchRaw(b *testing.B, syncAlways bool, writers int) {
	nc := benchServer(b, syncAlways)
	ctx := context.Background()
	js, err := jetstream.New(nc)
	if err != nil {
		b.Fatal(err)
	}
	createRawStream(b, js, false)
	aggs := make([][]writerAggregate, writers)
	for w := range writers {
		aggs[w] = writerAggregates(b, w)
	}
	sample, err := events.Marshal(aggs[0][0].template)
	if err != nil {
		b.Fatal(err)
	}
	payload := make([]byte, len(sample))
	copy(payload, sample)
	runWriters(b, writers, func(w, n int) error {
		mine := aggs[w]
		for i := range n {
			a := &mine[i%len(mine)]
			a.version++
			id := a.idPrefix + strconv.FormatUint(a.version, 10)
			ack, err := js.Publish(ctx, a.subject, payload, jetstream.WithMsgID(id), jetstream.WithExpectLastSequencePerSubject(a.expected))
			if err != nil {
				return err
			}
			a.expected = ack.Sequence
		}
		return nil
	})
	b.ReportMetric(float64(len(payload)), "payload-bytes")
}

// BenchmarkLoad compares ways to read one aggregate of 10 commits. In
// the "interleaved" layout its commits are spread over a 5,000-message
// stream, each followed by 499 other aggregates' commits, as orders placed
// at the same time are; in the "contiguous" layout they are back to back.
// "direct" is Store.Load (direct batch get), "consumer" the alternative
// one could take: an ordered consumer filtered on the aggregate's
// subject, created and deleted per load; "last" is Store.Last.
//
//	go test ./streams -run '^$' -bench Load -benchtime 3s -count 3
func BenchmarkLoad(b *testing.B) {
	const aggregates, commits = 500, 10
	nc := benchServer(b, false)
	ctx := context.Background()
	s, err := testkit.OpenLog(ctx, nc, streams.Config{})
	if err != nil {
		b.Fatal(err)
	}
	expected := make([]uint64, aggregates)
	for v := 1; v <= commits; v++ {
		for a := range aggregates {
			c := benchCommit(b, fmt.Sprintf("load-%d", a), uint64(v), "")
			res, err := s.Append(ctx, c, expected[a])
			if err != nil {
				b.Fatal(err)
			}
			expected[a] = res.Seq
		}
	}
	var seq uint64
	for v := 1; v <= commits; v++ {
		res, err := s.Append(ctx, benchCommit(b, "contiguous", uint64(v), ""), seq)
		if err != nil {
			b.Fatal(err)
		}
		seq = res.Seq
	}
	js, err := jetstream.New(nc)
	if err != nil {
		b.Fatal(err)
	}
	interleaved := func(i int) string { return fmt.Sprintf("load-%d", i%aggregates) }
	contiguous := func(int) string { return "contiguous" }

	direct := func(id func(int) string) func(b *testing.B) {
		return func(b *testing.B) {
			i := 0
			for b.Loop() {
				recs, err := s.Load(ctx, eventlog.TypeOrder, id(i), 0)
				if err != nil || len(recs) != commits {
					b.Fatalf("load: %d records, %v", len(recs), err)
				}
				i++
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "loads/s")
		}
	}
	consumer := func(id func(int) string) func(b *testing.B) {
		return func(b *testing.B) {
			i := 0
			for b.Loop() {
				subj, err := s.Subject(eventlog.TypeOrder, id(i))
				if err != nil {
					b.Fatal(err)
				}
				cons, err := js.OrderedConsumer(ctx, "ORDERS", jetstream.OrderedConsumerConfig{FilterSubjects: []string{subj}})
				if err != nil {
					b.Fatal(err)
				}
				batch, err := cons.Fetch(commits, jetstream.FetchMaxWait(time.Second))
				if err != nil {
					b.Fatal(err)
				}
				n := 0
				for m := range batch.Messages() {
					if _, err := events.Unmarshal(m.Data()); err != nil {
						b.Fatal(err)
					}
					n++
				}
				if n != commits {
					b.Fatalf("ordered consumer: %d records, %v", n, batch.Error())
				}
				if err := js.DeleteConsumer(ctx, "ORDERS", cons.CachedInfo().Name); err != nil {
					b.Fatal(err)
				}
				i++
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "loads/s")
		}
	}
	b.Run("interleaved/direct", direct(interleaved))
	b.Run("interleaved/consumer", consumer(interleaved))
	b.Run("contiguous/direct", direct(contiguous))
	b.Run("contiguous/consumer", consumer(contiguous))
	b.Run("last", func(b *testing.B) {
		i := 0
		for b.Loop() {
			if _, ok, err := s.Last(ctx, eventlog.TypeOrder, interleaved(i)); err != nil || !ok {
				b.Fatalf("last: %v %v", ok, err)
			}
			i++
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "loads/s")
	})
}

// BenchmarkDecisionReads measures what the reads a command is decided on
// cost now that they are bounded by the stream leader ("leader":
// Store.Load, Store.Last) against the replica reads the store made
// before ("replica": direct gets only), in the same run, on one server
// (R1) and on a three-node in-process cluster (R3) through a connection
// to a follower of ORDERS. "load1" loads an aggregate of one commit (a
// new order), "load10" one of ten, "nonew" asks for the commits after
// the last one (a cached state checking it is current), "last" reads the
// last commit.
//
//	go test ./streams -run '^$' -bench DecisionReads -benchtime 2s -count 3
func BenchmarkDecisionReads(b *testing.B) {
	for _, replicas := range []int{1, 3} {
		b.Run(fmt.Sprintf("R%d", replicas), func(b *testing.B) {
			s := decisionStore(b, replicas)
			ctx := context.Background()
			var lastSeq uint64
			for v := 1; v <= 10; v++ {
				res, err := s.Append(ctx, benchCommit(b, "ten", uint64(v), ""), lastSeq)
				if err != nil {
					b.Fatal(err)
				}
				lastSeq = res.Seq
			}
			if _, err := s.Append(ctx, benchCommit(b, "one", 1, ""), 0); err != nil {
				b.Fatal(err)
			}
			loads := map[string]func(context.Context, string, string, uint64) ([]eventlog.Record, error){
				"leader": s.Load, "replica": s.LoadFromReplica,
			}
			lasts := map[string]func(context.Context, string, string) (eventlog.Record, bool, error){
				"leader": s.Last, "replica": s.LastFromReplica,
			}
			for _, path := range []string{"replica", "leader"} {
				load, last := loads[path], lasts[path]
				b.Run("load1/"+path, func(b *testing.B) { benchLoad(b, load, "one", 0, 1) })
				b.Run("load10/"+path, func(b *testing.B) { benchLoad(b, load, "ten", 0, 10) })
				b.Run("nonew/"+path, func(b *testing.B) { benchLoad(b, load, "ten", lastSeq, 0) })
				b.Run("last/"+path, func(b *testing.B) {
					for b.Loop() {
						if _, ok, err := last(ctx, eventlog.TypeOrder, "ten"); err != nil || !ok {
							b.Fatalf("last: %v %v", ok, err)
						}
					}
				})
			}
		})
	}
}

// decisionStore opens the store on one server, or on a three-node cluster
// through a follower of ORDERS.
func decisionStore(b *testing.B, replicas int) *streams.Store {
	b.Helper()
	if replicas == 1 {
		s, err := testkit.OpenLog(context.Background(), benchServer(b, false), streams.Config{})
		if err != nil {
			b.Fatal(err)
		}
		return s
	}
	servers, nc := testkit.Cluster(b, replicas)
	if _, err := testkit.OpenLog(context.Background(), nc, streams.Config{Replicas: replicas}); err != nil {
		b.Fatal(err)
	}
	var fnc *nats.Conn
	for _, srv := range servers {
		if !srv.JetStreamIsStreamLeader("$G", "ORDERS") {
			c, err := natsembed.Connect(srv)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(c.Close)
			fnc = c
			break
		}
	}
	s, err := testkit.OpenLog(context.Background(), fnc, streams.Config{})
	if err != nil {
		b.Fatal(err)
	}
	return s
}

func benchLoad(b *testing.B, load func(context.Context, string, string, uint64) ([]eventlog.Record, error), id string, after uint64, want int) {
	ctx := context.Background()
	for b.Loop() {
		recs, err := load(ctx, eventlog.TypeOrder, id, after)
		if err != nil || len(recs) != want {
			b.Fatalf("load: %d records, %v; want %d", len(recs), err, want)
		}
	}
}
