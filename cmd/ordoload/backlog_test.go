package main

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestSumBacklog: the backlog is the sum of every
// ordo_process_backlog_messages series; a scrape without them, or one
// that says the backlog could not be read, is an error.
func TestSumBacklog(t *testing.T) {
	scrape := `# HELP ordo_process_backlog_messages x
# TYPE ordo_process_backlog_messages gauge
ordo_process_backlog_messages{consumer="checkout-orders",state="pending",stream="ORDERS"} 40
ordo_process_backlog_messages{consumer="checkout-orders",state="unacked",stream="ORDERS"} 3
ordo_process_backlog_messages{consumer="checkout-timers",state="pending",stream="TIMERS"} 1e+00
ordo_process_backlog_up 1
go_goroutines 12
`
	if n, err := sumBacklog(bufio.NewScanner(strings.NewReader(scrape))); err != nil || n != 44 {
		t.Errorf("sum %d, %v; want 44", n, err)
	}
	for _, bad := range []string{"go_goroutines 12\n", "ordo_process_backlog_up 0\n", `ordo_process_backlog_messages{a="b"} many` + "\n"} {
		if n, err := sumBacklog(bufio.NewScanner(strings.NewReader(bad))); err == nil {
			t.Errorf("%q: sum %d, no error", bad, n)
		}
	}
}

// TestFollowBacklogGivesUpOnAnUnreadableBacklog: once every flow is done,
// a backlog that cannot be read (no process managers, metrics off) ends
// the following after three failed reads instead of holding the run
// until its drain ends.
func TestFollowBacklogGivesUpOnAnUnreadableBacklog(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "go_goroutines 12") // no backlog series
	}))
	defer srv.Close()
	done := make(chan struct{})
	close(done)
	// A liveness bound only: without the give-up the follower would run
	// until this context ends.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rep := followBacklog(ctx, srv.URL, time.Now().Add(-time.Second), done)
	if ctx.Err() != nil || rep.Samples != 0 || rep.Unread != 3 {
		t.Fatalf("follower ran until its context ended (%v) or read wrongly: %+v", ctx.Err(), rep)
	}
}
