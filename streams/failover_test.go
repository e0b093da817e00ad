package streams_test

import (
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/ordo-shop/ordo/eventlog"
	"github.com/ordo-shop/ordo/internal/testkit"
	"github.com/ordo-shop/ordo/streams"
)

// failoverWait is the leader wait of the stores in these tests. A call
// that waited out its caller's deadline (60 s here) instead of giving up
// after it fails with context.DeadlineExceeded, never with the errors
// the tests expect: that, not a timing, shows it answered promptly.
const failoverWait = time.Second

// A stream without a quorum answers appends and loads promptly, saying
// what is known. While the leader that lost its followers still leads, it
// takes the append and cannot commit it: the outcome is unknown. Once it
// has stepped down (nats-server does so about 10 s after losing its
// quorum) nobody takes the append, and nothing was stored. Before, both
// waited out the caller's deadline and reported only that.
func TestLeaderlessStreamAnswersPromptly(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test")
	}
	servers, nc := testkit.Cluster(t, 3)
	openOn(t, nc, 3)
	leader := streamLeader(t, servers, "ORDERS")
	store := openWait(t, leader)
	appendChain(t, store, "before", 1)
	for _, s := range servers {
		if s != leader {
			s.Shutdown()
		}
	}

	if err := timedAppend(t, store, "stranded"); !errors.Is(err, eventlog.ErrOutcomeUnknown) {
		t.Fatalf("append to a leader without quorum: %v, want %v", err, eventlog.ErrOutcomeUnknown)
	}
	waitUnheld(t, leader, "order.0.probe")
	err := timedAppend(t, store, "unled")
	if !errors.Is(err, eventlog.ErrLeaderUnavailable) || errors.Is(err, eventlog.ErrOutcomeUnknown) {
		t.Fatalf("append without a leader: %v, want only %v", err, eventlog.ErrLeaderUnavailable)
	}
	_, err = store.Load(testCtx(t), eventlog.TypeOrder, "before", 0)
	if !errors.Is(err, eventlog.ErrLeaderUnavailable) {
		t.Fatalf("load without a leader: %v, want %v", err, eventlog.ErrLeaderUnavailable)
	}
}

// waitUnheld waits until nobody on s listens on subject: the stream
// leader without quorum has stepped down (nats-server does so about 10 s
// after losing it) and dropped the stream's subjects.
func waitUnheld(t *testing.T, s *server.Server, subject string) {
	t.Helper()
	nc := connect(t, s)
	for end := time.Now().Add(time.Minute); ; time.Sleep(100 * time.Millisecond) {
		_, err := nc.Request(subject, nil, time.Second)
		if errors.Is(err, nats.ErrNoResponders) {
			return
		}
		if time.Now().After(end) {
			t.Fatalf("%s still held a minute after the quorum was lost: %v", subject, err)
		}
	}
}

func streamLeader(t *testing.T, servers []*server.Server, stream string) *server.Server {
	t.Helper()
	for _, s := range servers {
		if s.JetStreamIsStreamLeader(server.DEFAULT_GLOBAL_ACCOUNT, stream) {
			return s
		}
	}
	t.Fatalf("%s has no leader", stream)
	return nil
}

// openWait opens a store with the tests' leader wait on a connection of
// its own to s.
func openWait(t *testing.T, s *server.Server) *streams.Store {
	t.Helper()
	st, err := testkit.OpenLog(testCtx(t), connect(t, s), streams.Config{Replicas: 3, LeaderWait: failoverWait})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	return st
}

// timedAppend appends the first commit of order id and returns the
// append's error (a deadline error if it waited out testCtx).
func timedAppend(t *testing.T, store *streams.Store, id string) error {
	t.Helper()
	_, err := store.Append(testCtx(t), sealed(t, id, id+"-1", 1, ""), 0)
	return err
}
