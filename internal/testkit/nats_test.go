package testkit_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ordo-shop/ordo/internal/natsembed"
	"github.com/ordo-shop/ordo/internal/testkit"
)

func TestNATS(t *testing.T) {
	s, nc := testkit.NATS(t, func(o *natsembed.Options) { o.SyncAlways = true })
	if !s.JetStreamConfig().SyncAlways {
		t.Error("option not applied: SyncAlways is off")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.AccountInfo(ctx); err != nil {
		t.Fatalf("JetStream not reachable: %v", err)
	}
}
