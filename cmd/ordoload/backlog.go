package main

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// backlogReport follows the process managers' backlog, as orderd's
// metrics report it (ordo_process_backlog_messages, summed over every
// consumer and state), through the run: its peak under load, and once the
// load stops whether it only shrank and when it was empty.
type backlogReport struct {
	URL     string `json:"metrics_url"`
	Samples int    `json:"samples"`
	// Unread counts scrapes that failed or had no backlog series (an
	// instance without the process managers).
	Unread        int   `json:"unread"`
	MaxUnderLoad  int64 `json:"max_under_load"`
	AtLoadEnd     int64 `json:"at_load_end"`
	MaxAfterLoad  int64 `json:"max_after_load"`
	RisesAfter    int   `json:"rises_after_load"`
	LargestRise   int64 `json:"largest_rise_after_load"`
	LastAfterLoad int64 `json:"last_after_load"`
	// AtFlowsEnd is the first reading once every order's flow was done
	// (-1 if none): from then on only Ordo itself (timers, retries, the
	// last commits' handling) adds to the backlog, so a rise after it is
	// work feeding more work.
	AtFlowsEnd            int64 `json:"at_flows_end"`
	RisesAfterFlows       int   `json:"rises_after_flows"`
	LargestRiseAfterFlows int64 `json:"largest_rise_after_flows"`
	// EmptyAfter is how long after the load's end the backlog first read
	// 0; -1 if it never did before the run ended.
	EmptyAfter time.Duration `json:"empty_after_ns"`
}

// backlogEvery is how often the backlog is read.
const backlogEvery = time.Second

// followBacklog reads the backlog every second until ctx ends, or, once
// loadEnd has passed and done is closed, until it has read 0 twice in a
// row (the backlog may briefly read 0 while the last orders' commits are
// on their way) or failed to read it three times in a row.
func followBacklog(ctx context.Context, url string, loadEnd time.Time, done <-chan struct{}) *backlogReport {
	rep := &backlogReport{URL: url, EmptyAfter: -1, AtLoadEnd: -1, AtFlowsEnd: -1}
	cl := &http.Client{Timeout: 5 * time.Second}
	after, flowsDone := false, false
	var prev, prevFlows int64 = -1, -1
	zeros, fails := 0, 0
	t := time.NewTicker(backlogEvery)
	defer t.Stop()
	for {
		select {
		case <-done:
			flowsDone = true
		default:
		}
		v, err := readBacklog(ctx, cl, url)
		now := time.Now()
		if err != nil {
			rep.Unread++
			fails++
		} else {
			rep.Samples++
			fails = 0
			if !now.After(loadEnd) {
				rep.MaxUnderLoad = max(rep.MaxUnderLoad, v)
			} else {
				if !after {
					after = true
					rep.AtLoadEnd = v
				} else if prev >= 0 && v > prev {
					rep.RisesAfter++
					rep.LargestRise = max(rep.LargestRise, v-prev)
				}
				rep.MaxAfterLoad = max(rep.MaxAfterLoad, v)
				rep.LastAfterLoad = v
				if v == 0 && rep.EmptyAfter < 0 {
					rep.EmptyAfter = now.Sub(loadEnd)
				}
				prev = v
				if flowsDone {
					if rep.AtFlowsEnd < 0 {
						rep.AtFlowsEnd = v
					} else if v > prevFlows {
						rep.RisesAfterFlows++
						rep.LargestRiseAfterFlows = max(rep.LargestRiseAfterFlows, v-prevFlows)
					}
					prevFlows = v
				}
			}
			if v == 0 {
				zeros++
			} else {
				zeros = 0
			}
		}
		// Once the flows are done the run waits only for a backlog it
		// can read: not for one that has not answered three times.
		if flowsDone && ((after && zeros >= 2) || fails >= 3) {
			return rep
		}
		select {
		case <-ctx.Done():
			return rep
		case <-t.C:
		}
	}
}

// readBacklog scrapes url and sums ordo_process_backlog_messages.
func readBacklog(ctx context.Context, cl *http.Client, url string) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := cl.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return sumBacklog(bufio.NewScanner(resp.Body))
}

// sumBacklog sums the ordo_process_backlog_messages series of a scrape;
// a scrape without them (or with ordo_process_backlog_up 0) is an error.
func sumBacklog(sc *bufio.Scanner) (int64, error) {
	var sum int64
	series := 0
	for sc.Scan() {
		line := sc.Text()
		if line == "ordo_process_backlog_up 0" {
			return 0, fmt.Errorf("orderd could not read the backlog")
		}
		if !strings.HasPrefix(line, "ordo_process_backlog_messages{") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			return 0, fmt.Errorf("metrics line %q: %w", line, err)
		}
		sum += int64(v)
		series++
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	if series == 0 {
		return 0, fmt.Errorf("no ordo_process_backlog_messages series (does this orderd run the process managers?)")
	}
	return sum, nil
}

// write prints the report's line of the summary.
func (b *backlogReport) write(sb *strings.Builder) {
	fmt.Fprintf(sb, "\nprocess-manager backlog (%s, every %s): ", b.URL, backlogEvery)
	if b.Samples == 0 {
		fmt.Fprintf(sb, "not read (%d scrapes failed)\n", b.Unread)
		return
	}
	fmt.Fprintf(sb, "at most %d messages under the load", b.MaxUnderLoad)
	if b.AtLoadEnd < 0 {
		sb.WriteString("; not read after the load\n")
		return
	}
	fmt.Fprintf(sb, "; %d when it ended, then ", b.AtLoadEnd)
	if n := b.RisesAfter - b.RisesAfterFlows; n == 0 {
		sb.WriteString("only shrank while the shoppers finished their orders")
	} else {
		fmt.Fprintf(sb, "rose %d times while the shoppers finished their orders (cancels, shipments; largest +%d, peak %d)", n, b.LargestRise, b.MaxAfterLoad)
	}
	if b.AtFlowsEnd >= 0 {
		fmt.Fprintf(sb, "; %d when the last order's flow was done, then ", b.AtFlowsEnd)
		if b.RisesAfterFlows == 0 {
			sb.WriteString("only shrank")
		} else {
			fmt.Fprintf(sb, "ROSE %d times (largest +%d)", b.RisesAfterFlows, b.LargestRiseAfterFlows)
		}
	}
	if b.EmptyAfter >= 0 {
		fmt.Fprintf(sb, "; empty %.0fs after the load", b.EmptyAfter.Seconds())
	} else {
		fmt.Fprintf(sb, "; NOT empty when the run ended (%d)", b.LastAfterLoad)
	}
	if b.Unread > 0 {
		fmt.Fprintf(sb, " (%d scrapes failed)", b.Unread)
	}
	sb.WriteString("\n")
}
