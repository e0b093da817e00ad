package streams_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/ordo-shop/ordo/eventlog"
	"github.com/ordo-shop/ordo/internal/local/natsembed"
	"github.com/ordo-shop/ordo/internal/testkit"
	"github.com/ordo-shop/ordo/streams"
)

// staleRounds is how many fresh aggregates the stale-replica tests write
// and read back. With the lagging mirrors answering about half of all
// direct gets, a store that trusted them would fail one of these rounds
// with near certainty.
const staleRounds = 30

// Load and Last see every acknowledged append, even when the servers
// answering direct gets have not applied it: a store reading through
// them used to answer "no such order" for orders that existed.
func TestLoadSeesWhatTheLeaderHas(t *testing.T) {
	t.Run("R1", func(t *testing.T) {
		s, nc := testkit.LogNATS(t)
		writer := openOn(t, nc, 1)
		reader := openOn(t, connect(t, s), 1)
		checkReadsSeeWrites(t, nc, writer, reader)
	})
	t.Run("R3", func(t *testing.T) {
		if testing.Short() {
			t.Skip("cluster test")
		}
		servers, nc := testkit.Cluster(t, 3)
		writer := openOn(t, nc, 3)
		// The reader goes through a follower of ORDERS.
		reader := openOn(t, connect(t, follower(t, servers, "ORDERS")), 3)
		checkReadsSeeWrites(t, nc, writer, reader)
	})
}

// checkReadsSeeWrites makes the direct gets of ORDERS stale, then writes
// fresh orders through writer and reads each back through reader at
// once.
func checkReadsSeeWrites(t *testing.T, nc *nats.Conn, writer, reader *streams.Store) {
	t.Helper()
	ctx := testCtx(t)
	appendChain(t, writer, "seed", 1)
	appendChain(t, writer, "probe", 1)
	keep, _ := writer.Subject(eventlog.TypeOrder, "seed")
	probe, _ := writer.Subject(eventlog.TypeOrder, "probe")
	testkit.LaggingMirrors(t, nc, "ORDERS", keep, probe, 2)

	for i := range staleRounds {
		id := fmt.Sprintf("fresh-%d", i)
		first, err := writer.Append(ctx, sealed(t, id, id+"-1", 1, ""), 0)
		if err != nil {
			t.Fatal(err)
		}
		if recs, err := reader.Load(ctx, eventlog.TypeOrder, id, 0); err != nil || len(recs) != 1 {
			t.Fatalf("round %d: load of a new order: %d records, %v; want 1", i, len(recs), err)
		}
		if last, ok, err := reader.Last(ctx, eventlog.TypeOrder, id); err != nil || !ok || last.Seq != first.Seq {
			t.Fatalf("round %d: last of a new order: %v at %d, %v; want seq %d", i, ok, last.Seq, err, first.Seq)
		}
		c1 := sealed(t, id, id+"-1", 1, "")
		second, err := writer.Append(ctx, sealed(t, id, id+"-2", 2, c1.Hash), first.Seq)
		if err != nil {
			t.Fatal(err)
		}
		recs, err := reader.Load(ctx, eventlog.TypeOrder, id, 0)
		if err != nil || len(recs) != 2 || recs[1].Seq != second.Seq {
			t.Fatalf("round %d: load after a second commit: %d records, %v; want 2 up to seq %d", i, len(recs), err, second.Seq)
		}
	}
}

// A read whose server dies with the request is asked again of another
// server, within the caller's deadline, instead of waiting it out.
func TestReadWhoseServerDiedIsAskedAgain(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test")
	}
	servers, nc := testkit.Cluster(t, 3)
	writer := openOn(t, nc, 3)
	recs := appendChain(t, writer, "survivor", 3)

	// The reader reaches the third server through a relay, and the other
	// two directly once that one is gone.
	relay := testkit.NewRelay(t, servers[2].Addr().String())
	reader := openOn(t, dial(t, relay.URL(), servers[1].ClientURL(), servers[0].ClientURL()), 3)

	relay.Hold()
	type loaded struct {
		recs []eventlog.Record
		err  error
	}
	done := make(chan loaded, 1)
	go func() {
		got, err := reader.Load(testCtx(t), eventlog.TypeOrder, "survivor", 0)
		done <- loaded{got, err}
	}()
	<-relay.Held() // the request went to the third server...
	servers[2].Shutdown()
	relay.Close() // ...which died with it
	got := <-done
	if got.err != nil || len(got.recs) != len(recs) {
		t.Fatalf("load after its server died: %d records, %v; want %d", len(got.recs), got.err, len(recs))
	}
}

// openOn opens the store on nc with the given replicas.
func openOn(t *testing.T, nc *nats.Conn, replicas int) *streams.Store {
	t.Helper()
	s, err := testkit.OpenLog(testCtx(t), nc, streams.Config{Replicas: replicas})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	return s
}

// connect opens another client connection, in process to s.
func connect(t *testing.T, s *server.Server) *nats.Conn {
	t.Helper()
	nc, err := natsembed.Connect(s)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// dial connects to the first of urls that answers, and to the next ones
// in order when it loses its server.
func dial(t *testing.T, urls ...string) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(strings.Join(urls, ","), nats.DontRandomize(), nats.MaxReconnects(-1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// follower returns a server of the cluster that is not the leader of
// stream.
func follower(t *testing.T, servers []*server.Server, stream string) *server.Server {
	t.Helper()
	for _, s := range servers {
		if !s.JetStreamIsStreamLeader(server.DEFAULT_GLOBAL_ACCOUNT, stream) {
			return s
		}
	}
	t.Fatalf("every server leads %s", stream)
	return nil
}
