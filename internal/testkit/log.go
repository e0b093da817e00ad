package testkit

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ordo-shop/ordo/streams"
)

// OpenLog creates the log on nc's server if it has none ([streams.Init])
// and opens it ([streams.Open]): what a test that owns its server wants
// where orderd would have been started or `orderctl init` run. It takes
// and returns what streams.Open does. The log is a new one: every commit
// appended to it must be signed (its commit streams record
// [streams.SignedFromKey] 1), so a test that appends unsigned commits
// and then verifies them wants [LegacyLog].
func OpenLog(ctx context.Context, nc *nats.Conn, cfg streams.Config) (*streams.Store, error) {
	if _, err := streams.Init(ctx, nc, cfg); err != nil {
		return nil, err
	}
	return streams.Open(ctx, nc, cfg)
}

// LegacyLog makes on nc's server a log as Ordo kept it before logs had an
// identity and commits a signature, and opens it: the five streams
// [streams.Init] creates, without the metadata of the log's identity
// ([streams.LogIDKey], [streams.CreatedKey]) and without
// [streams.SignedFromKey], so that unsigned commits appended to it are
// history from before signing began. A later streams.Init adopts it, as
// an upgraded orderd or `orderctl init` does, and signing begins at each
// commit stream's next sequence. nc must be allowed to change streams
// (the admin, where the server has users); the server must hold no log
// yet, and cfg.LogID must be empty.
func LegacyLog(ctx context.Context, nc *nats.Conn, cfg streams.Config) (*streams.Store, error) {
	li, err := streams.Init(ctx, nc, cfg)
	if err != nil {
		return nil, err
	}
	if !li.New {
		return nil, fmt.Errorf("legacy log: the server already holds log %s", li.ID)
	}
	if err := RemoveLogIdentity(ctx, nc); err != nil {
		return nil, fmt.Errorf("legacy log: %w", err)
	}
	return streams.Open(ctx, nc, cfg)
}

// RemoveLogIdentity removes [streams.LogIDKey], [streams.CreatedKey] and
// [streams.SignedFromKey] from the metadata of every stream of the log
// on nc's server (those it has), by metadata-only stream updates: what
// is left is the log as it was before logs had an identity and commits a
// signature. nc must be allowed to change streams.
func RemoveLogIdentity(ctx context.Context, nc *nats.Conn) error {
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	for _, name := range streams.LogStreams() {
		st, err := js.Stream(ctx, name)
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		sc := st.CachedInfo().Config
		sc.Metadata = maps.Clone(sc.Metadata)
		for _, k := range []string{streams.LogIDKey, streams.CreatedKey, streams.SignedFromKey} {
			delete(sc.Metadata, k)
		}
		if _, err := js.UpdateStream(ctx, sc); err != nil {
			return fmt.Errorf("remove the identity of stream %s: %w", name, err)
		}
	}
	return nil
}

// InitLog creates the log on the NATS server or cluster at url, as
// `orderctl init` does before orderd is started against an external NATS
// (ORDO_NATS_URL), and returns it. opts are added to the connection's
// options: a server or cluster with Ordo's users ([WithUsers]) wants the
// admin's credentials, natsauth.Keys.Option(natsauth.Admin).
func InitLog(tb testing.TB, url string, cfg streams.Config, opts ...nats.Option) streams.LogInfo {
	tb.Helper()
	all := append([]nats.Option{nats.Name("testkit-init"), nats.Timeout(5 * time.Second)}, opts...)
	nc, err := nats.Connect(url, all...)
	if err != nil {
		tb.Fatalf("init log: connect to %s: %v", url, err)
	}
	defer nc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	li, err := streams.Init(ctx, nc, cfg)
	if err != nil {
		tb.Fatalf("init log on %s: %v", url, err)
	}
	return li
}
