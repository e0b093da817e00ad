package main

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ordo-shop/ordo/events"
	"github.com/ordo-shop/ordo/internal/config"
	"github.com/ordo-shop/ordo/internal/testkit"
	"github.com/ordo-shop/ordo/streams"
)

// The production shape: two orderd instances on an external three-node
// JetStream cluster (ORDO_NATS_URL, ORDO_REPLICAS=3), racing on the same
// order. The streams are created with three replicas, every request gets
// an answer the state machine allows, and the order's history is one
// valid walk with exactly one cancellation.
func TestTwoInstancesOnAThreeNodeCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-node cluster")
	}
	servers, nc := testkit.Cluster(t, 3)
	testkit.InitLog(t, servers[0].ClientURL(), streams.Config{Replicas: 3}) // orderctl init
	instances := make([]*testApp, 2)
	for i := range instances {
		instances[i] = mustStart(t, func(c *config.Config) {
			c.NATSURL = servers[i].ClientURL()
			c.Replicas = 3
		})
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"ORDERS", "INVENTORY", "PAYMENTS"} {
		st, err := js.Stream(context.Background(), name)
		if err != nil {
			t.Fatal(err)
		}
		if r := st.CachedInfo().Config.Replicas; r != 3 {
			t.Fatalf("stream %s has %d replicas, want 3", name, r)
		}
	}

	one, two := instances[0], instances[1]
	one.putSKU("TEA-250", 1999, 100)
	placed := two.place(two.alice, "k", orderBody(line("TEA-250", 1))) // the SKU was written by the other instance
	if placed.status != 202 {
		t.Fatalf("place through the second instance: %d %s", placed.status, placed.raw)
	}
	id := placed.body["order_id"].(string)
	statuses := make([]int, 40)
	var wg sync.WaitGroup
	for i := range statuses {
		ta := instances[i%2]
		wg.Go(func() {
			statuses[i] = ta.do("POST", "/v1/orders/"+id+"/cancel", ta.alice, map[string]any{"reason": fmt.Sprint(i)}).status
		})
	}
	wg.Wait()
	// One cancel appends (202); the others find it cancelled (200).
	appended := 0
	for i, s := range statuses {
		switch s {
		case 202:
			appended++
		case 200:
		default:
			t.Errorf("cancel %d through instance %d: status %d", i, i%2+1, s)
		}
	}
	if appended != 1 {
		t.Errorf("%d cancels answered 202, want exactly 1", appended)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	recs, err := one.store.Load(ctx, "order", id, 0)
	if err != nil {
		t.Fatal(err)
	}
	commits := make([]*events.Commit, len(recs))
	for i, r := range recs {
		commits[i] = r.Commit
	}
	if breaks := events.VerifyChain(commits); len(breaks) > 0 {
		t.Fatalf("chain: %v", breaks)
	}
	if types := eventTypes(commits); fmt.Sprint(types) != "[order.placed order.cancelled]" {
		t.Fatalf("history %v, want placed then one cancellation", types)
	}
}
