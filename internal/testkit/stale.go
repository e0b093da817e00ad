package testkit

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// staleTimeout bounds how long [LaggingMirrors] waits for its mirrors to
// answer direct gets.
const staleTimeout = 30 * time.Second

// LaggingMirrors makes a stream's direct gets stale on demand, as a
// replica that has not yet applied the latest writes makes them under load
// or while it catches up (which no test can time). It creates n mirrors of
// stream that copy only the messages on subject keep. A mirror of a stream
// that allows direct gets inherits them (mirror_direct) and, once it has
// copied a message and is nearly caught up, joins the queue group that
// answers the stream's direct gets (nats-server stream.go,
// processInboundMirrorMsg and subscribeToMirrorDirect). These mirrors
// then answer for every other subject as a replica that has applied none
// of its writes would: "not found", or an older history.
//
// keep must hold at least one message. LaggingMirrors returns once a
// direct get of the last message on probe, a subject with messages the
// mirrors do not copy, has been answered "not found". The mirrors live
// until the test's servers stop.
func LaggingMirrors(tb testing.TB, nc *nats.Conn, stream, keep, probe string, n int) {
	tb.Helper()
	js, err := jetstream.New(nc)
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), staleTimeout)
	defer cancel()
	for i := range n {
		_, err := js.CreateStream(ctx, jetstream.StreamConfig{
			Name:    fmt.Sprintf("%s_LAG%d", stream, i),
			Storage: jetstream.MemoryStorage,
			Mirror:  &jetstream.StreamSource{Name: stream, FilterSubject: keep},
		})
		if err != nil {
			tb.Fatalf("create lagging mirror %d of %s: %v", i, stream, err)
		}
	}
	for ctx.Err() == nil {
		m, err := nc.RequestWithContext(ctx, jetstream.DefaultAPIPrefix+"DIRECT.GET."+stream+"."+probe, nil)
		if err == nil && m.Header.Get("Status") == "404" {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	tb.Fatalf("no mirror of %s answered a direct get of %s within %s", stream, probe, staleTimeout)
}
