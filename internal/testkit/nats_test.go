package testkit_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ordo-shop/ordo/internal/local/natsembed"
	"github.com/ordo-shop/ordo/internal/natsauth"
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

// A cluster with Ordo's users admits only them, each with its
// permissions, and its nodes route to each other with their password.
func TestClustersWithUsers(t *testing.T) {
	if testing.Short() {
		t.Skip("starts clusters")
	}
	keys, err := natsauth.NewKeys()
	if err != nil {
		t.Fatal(err)
	}
	t.Run("in process", func(t *testing.T) {
		servers, admin := testkit.Cluster(t, 3, testkit.WithUsers(keys))
		urls := make([]string, len(servers))
		for i, s := range servers {
			urls[i] = s.ClientURL()
		}
		checkUsers(t, admin, urls, keys)
	})
	t.Run("processes", func(t *testing.T) {
		nodes := testkit.ProcessCluster(t, 3, testkit.WithUsers(keys))
		urls := make([]string, len(nodes))
		for i, nd := range nodes {
			urls[i] = nd.ClientURL
		}
		admin := testkit.ConnectNATS(t, strings.Join(urls, ","), keys.Option(natsauth.Admin))
		checkUsers(t, admin.Conn, urls, keys)
	})
}

func checkUsers(t *testing.T, admin *nats.Conn, urls []string, keys *natsauth.Keys) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	js, err := jetstream.New(admin)
	if err != nil {
		t.Fatal(err)
	}
	// Replicas on every node: the routes carry the stream.
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "ORDERS", Subjects: []string{"order.*.*"}, Replicas: 3, DenyDelete: true, DenyPurge: true}); err != nil {
		t.Fatalf("admin creates a replicated stream: %v", err)
	}
	for _, u := range urls {
		if nc, err := nats.Connect(u); !natsauth.Refused(err) {
			if nc != nil {
				nc.Close()
			}
			t.Fatalf("%s without credentials: %v", u, err)
		}
	}
	svc := testkit.ConnectNATS(t, urls[1], keys.Option(natsauth.Service))
	sjs, _ := jetstream.New(svc.Conn)
	if _, err := sjs.Publish(ctx, "order.1.x", []byte("commit")); err != nil {
		t.Fatalf("service appends: %v", err)
	}
	aud := testkit.ConnectNATS(t, urls[2], keys.Option(natsauth.Auditor))
	aud.Refused(t, "auditor publishes a commit", aud.PublishOp("order.1.y", []byte("forged")))
	ajs, _ := jetstream.New(aud.Conn)
	aud.Refused(t, "auditor deletes ORDERS", func(ctx context.Context) error { return ajs.DeleteStream(ctx, "ORDERS") })
	svc.Refused(t, "service deletes ORDERS", func(ctx context.Context) error { return sjs.DeleteStream(ctx, "ORDERS") })
	st, err := ajs.Stream(ctx, "ORDERS")
	if err != nil || st.CachedInfo().State.Msgs != 1 {
		t.Fatalf("ORDERS as the auditor reads it: %v", err)
	}
}
