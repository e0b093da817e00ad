package main

import (
	"bufio"
	"strings"
	"testing"
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
