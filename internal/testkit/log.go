package testkit

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/ordo-shop/ordo/streams"
)

// OpenLog creates the log on nc's server if it has none ([streams.Init])
// and opens it ([streams.Open]): what a test that owns its server wants
// where orderd would have been started or `orderctl init` run. It takes
// and returns what streams.Open does.
func OpenLog(ctx context.Context, nc *nats.Conn, cfg streams.Config) (*streams.Store, error) {
	if _, err := streams.Init(ctx, nc, cfg); err != nil {
		return nil, err
	}
	return streams.Open(ctx, nc, cfg)
}

// InitLog creates the log on the NATS server or cluster at url, as
// `orderctl init` does before orderd is started against an external NATS
// (ORDO_NATS_URL), and returns it.
func InitLog(tb testing.TB, url string, cfg streams.Config) streams.LogInfo {
	tb.Helper()
	nc, err := nats.Connect(url, nats.Name("testkit-init"), nats.Timeout(5*time.Second))
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
