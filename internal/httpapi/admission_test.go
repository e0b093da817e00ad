package httpapi_test

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ordo-shop/ordo/internal/auth"
	"github.com/ordo-shop/ordo/internal/httpapi"
)

// fakeBacklog is a checkout backlog a test sets.
type fakeBacklog struct {
	mu    sync.Mutex
	value int
	err   error
	asked int
}

func (b *fakeBacklog) set(v int, err error) {
	b.mu.Lock()
	b.value, b.err = v, err
	b.mu.Unlock()
}

func (b *fakeBacklog) get(context.Context) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.asked++
	return b.value, b.err
}

// TestAdmissionRefusesPlacesWhileTheCheckoutIsBehind: above the bound a
// place is 429 checkout_busy with Retry-After (and counted), while a
// read and a cancel of an order placed before go through; at or below
// it, and when the backlog cannot be read, places are admitted. The
// backlog is asked at most once per interval.
func TestAdmissionRefusesPlacesWhileTheCheckoutIsBehind(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Second)
	var clock sync.Mutex
	tick := func(d time.Duration) { clock.Lock(); now = now.Add(d); clock.Unlock() }
	backlog := &fakeBacklog{}
	var refused int
	a := newAPIWith(t, nil, func(d *httpapi.Deps) {
		d.Now = func() time.Time { clock.Lock(); defer clock.Unlock(); return now }
		d.Admission = httpapi.Admission{Max: 100, Backlog: backlog.get, Every: time.Second, Refused: func() { refused++ }}
	})
	a.putSKU("TEA", 1999, 1000)

	backlog.set(100, nil)
	status, id, _ := a.placeAs("c-1", "k-1")
	if status != 202 {
		t.Fatalf("place at the bound: %d %s", status, id)
	}

	backlog.set(160, nil)
	// Within the interval the last answer (100) still holds.
	if status, c, _ := a.placeAs("c-2", "k-2"); status != 202 {
		t.Fatalf("place within the sampling interval: %d %s", status, c)
	}
	tick(time.Second)
	status, c, retry := a.placeAs("c-2", "k-3")
	if status != 429 || c != "checkout_busy" {
		t.Fatalf("place above the bound: %d %s, want 429 checkout_busy", status, c)
	}
	if n, err := strconv.Atoi(retry); err != nil || n < 1 || n > 30 {
		t.Fatalf("Retry-After %q, want 1..30 seconds", retry)
	}
	if refused != 1 {
		t.Fatalf("refused counted %d times, want 1", refused)
	}
	// Reads and cancels are not admission-controlled.
	if status, body := a.do("GET", "/v1/skus/TEA", "ops", auth.RoleAdmin, nil); status != 200 {
		t.Fatalf("read while busy: %d %v", status, body)
	}
	if status, body := a.do("POST", "/v1/orders/"+id+"/cancel", "c-1", auth.RoleCustomer, map[string]any{"reason": "busy"}); status != 202 {
		t.Fatalf("cancel while busy: %d %v", status, body)
	}
	// Draining at 40 messages a second, 20 over the bound: Retry-After 1.
	tick(time.Second)
	backlog.set(120, nil)
	if status, c, retry := a.placeAs("c-2", "k-3"); status != 429 || c != "checkout_busy" || retry != "1" {
		t.Fatalf("place while draining: %d %s Retry-After %q, want 429 checkout_busy 1", status, c, retry)
	}
	// Back under the bound.
	tick(time.Second)
	backlog.set(90, nil)
	if status, c, _ := a.placeAs("c-2", "k-3"); status != 202 {
		t.Fatalf("place after the backlog shrank: %d %s", status, c)
	}
	// A backlog that cannot be read admits.
	tick(time.Second)
	backlog.set(0, errors.New("no consumer leader"))
	if status, c, _ := a.placeAs("c-3", "k-4"); status != 202 {
		t.Fatalf("place with the backlog unknown: %d %s", status, c)
	}
	backlog.mu.Lock()
	asked := backlog.asked
	backlog.mu.Unlock()
	if asked != 5 {
		t.Fatalf("backlog asked %d times, want 5 (once per interval)", asked)
	}
}
