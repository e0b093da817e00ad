package sagas_test

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ordo-shop/ordo/aggregates/order"
	"github.com/ordo-shop/ordo/events"
	"github.com/ordo-shop/ordo/internal/auth"
	"github.com/ordo-shop/ordo/internal/local/pspsim"
	"github.com/ordo-shop/ordo/internal/testkit"
)

// TestMeasureKeepUp is the storefront-style measurement behind decision
// 024, run by hand (ORDO_KEEPUP_MEASURE=1; ORDO_KEEPUP_RATE orders/s,
// default 60; ORDO_KEEPUP_SECONDS, default 20): 16 clients place orders
// at a fixed rate over HTTP (two lines each, one of them on a hot SKU),
// nobody pays (manual mode), a fifth are cancelled by their customer half
// a second after they were placed, the rest by the 3 s payment timeout.
// It reports, from the commits' recorded times, place → decided
// (order.placed to stock_reserved or rejected), the payment timeout's
// lateness (order.cancelled by payment_timeout after payment_requested +
// 3 s) and the release delay (order.cancelled to its last
// inventory.released), with the load average. It asserts nothing about
// time.
func TestMeasureKeepUp(t *testing.T) {
	if os.Getenv("ORDO_KEEPUP_MEASURE") == "" {
		t.Skip("a measurement, run by hand: ORDO_KEEPUP_MEASURE=1")
	}
	rate, seconds := 60, 20
	if v, err := strconv.Atoi(os.Getenv("ORDO_KEEPUP_RATE")); err == nil && v > 0 {
		rate = v
	}
	if v, err := strconv.Atoi(os.Getenv("ORDO_KEEPUP_SECONDS")); err == nil && v > 0 {
		seconds = v
	}
	const timeout = 3 * time.Second
	e := newEnv(t, envOptions{simMode: pspsim.ModeManual, paymentTimeout: timeout, reconcile: time.Second})
	skus := []string{"HOT"}
	for i := range 20 {
		skus = append(skus, fmt.Sprintf("S-%02d", i))
	}
	for _, s := range skus {
		e.putSKU(s, 100, 1_000_000)
	}
	load0, _ := os.ReadFile("/proc/loadavg")
	var mu sync.Mutex
	var ids []string
	n := rate * seconds
	tick := time.Second / time.Duration(rate)
	jobs := make(chan int)
	var wg sync.WaitGroup
	for c := range 16 {
		wg.Go(func() {
			tok := e.token(fmt.Sprintf("shopper-%d", c), auth.RoleCustomer)
			for i := range jobs {
				id := e.place(fmt.Sprintf("shopper-%d", c), fmt.Sprintf("k-%d", i), line{"HOT", 1}, line{skus[1+i%20], 1})
				mu.Lock()
				ids = append(ids, id)
				mu.Unlock()
				if i%5 == 0 {
					time.AfterFunc(500*time.Millisecond, func() {
						e.do("POST", "/v1/orders/"+id+"/cancel", tok, map[string]any{"reason": "changed my mind"})
					})
				}
			}
		})
	}
	start := time.Now()
	for i := range n {
		time.Sleep(time.Until(start.Add(time.Duration(i) * tick)))
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	placedIn := time.Since(start)
	load1, _ := os.ReadFile("/proc/loadavg")
	// Wait (bounded) for every order to end.
	testkit.Eventually(t, "every order to end", 5*time.Minute, testkit.Holds(func() bool {
		for _, id := range ids {
			if s, _ := e.order(id); s.Status != order.StatusCancelled && s.Status != order.StatusRejected {
				return false
			}
		}
		return true
	}))
	// Reservations and releases, by order, from the SKUs' commits. An
	// order cancelled before the checkout reserved anything has nothing
	// to release.
	released := map[string]time.Time{}
	reserved := map[string]bool{}
	testkit.Eventually(t, "every reservation released", 5*time.Minute, testkit.Holds(func() bool {
		clear(released)
		clear(reserved)
		for _, s := range skus {
			_, cs := e.sku(s)
			for _, c := range cs {
				for _, ev := range c.Events {
					switch ev.Type {
					case "inventory.released":
						var r events.InventoryReleased
						if err := json.Unmarshal(ev.Data, &r); err == nil && c.Metadata.RecordedAt.After(released[r.OrderID]) {
							released[r.OrderID] = c.Metadata.RecordedAt
						}
					case "inventory.reserved":
						var r events.InventoryReserved
						if err := json.Unmarshal(ev.Data, &r); err == nil {
							reserved[r.OrderID] = true
						}
					}
				}
			}
		}
		for id := range reserved {
			if _, ok := released[id]; !ok {
				return false
			}
		}
		return true
	}))
	for _, s := range skus {
		if st, _ := e.sku(s); st.Available() != 1_000_000 {
			t.Errorf("%s has %d available after every order ended, want 1000000", s, st.Available())
		}
	}
	var decided, late, release []time.Duration
	for _, id := range ids {
		_, cs := e.order(id)
		var placedAt, requestedAt time.Time
		for _, c := range cs {
			at := c.Metadata.RecordedAt
			for _, ev := range c.Events {
				switch ev.Type {
				case "order.placed":
					placedAt = at
				case "order.stock_reserved", "order.rejected":
					decided = append(decided, at.Sub(placedAt))
				case "order.payment_requested":
					requestedAt = at
				case "order.cancelled":
					var oc events.OrderCancelled
					if err := json.Unmarshal(ev.Data, &oc); err == nil && oc.CancelledBy == "payment_timeout" && !requestedAt.IsZero() {
						late = append(late, at.Sub(requestedAt.Add(timeout)))
					}
					if r, ok := released[id]; ok {
						release = append(release, r.Sub(at))
					}
				}
			}
		}
	}
	t.Logf("%d orders at %d/s placed in %.1fs; loadavg before %s after %s; %d never reserved (cancelled first)", len(ids), rate, placedIn.Seconds(), trim(load0), trim(load1), len(ids)-len(reserved))
	t.Logf("place→decided %s", quantiles(decided))
	t.Logf("timeout lateness %s", quantiles(late))
	t.Logf("release delay %s", quantiles(release))
}

func trim(b []byte) string {
	s := string(b)
	if len(s) > 14 {
		s = s[:14]
	}
	return s
}

func quantiles(ds []time.Duration) string {
	if len(ds) == 0 {
		return "(none)"
	}
	slices.Sort(ds)
	q := func(p float64) float64 { return ds[int(p*float64(len(ds)-1))].Seconds() }
	return fmt.Sprintf("n=%d p50 %.3fs p90 %.3fs p99 %.3fs max %.3fs", len(ds), q(0.5), q(0.9), q(0.99), ds[len(ds)-1].Seconds())
}
