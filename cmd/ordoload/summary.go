package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/ordo-shop/ordo/internal/auth"
	"github.com/ordo-shop/ordo/internal/pause"
)

// summary is what a run found. Every accepted order ends in exactly one
// outcome: Accepted = Rejected + Paid + Shipped + Cancelled + TimedOut +
// Declined + Failed + InFlight.
type summary struct {
	Mode        string        `json:"mode"`
	Pay         string        `json:"pay"`
	Shoppers    int           `json:"shoppers,omitempty"`
	Rate        float64       `json:"rate,omitempty"`
	MaxInFlight int           `json:"max_in_flight,omitempty"`
	Customers   int           `json:"customers"`
	SKUs        int           `json:"skus"`
	RunID       string        `json:"run_id"`
	Ran         time.Duration `json:"ran_ns"`
	Drained     time.Duration `json:"drained_ns"`

	Attempts    int64 `json:"place_attempts"` // place requests, not counting the client's retries after Retry-After
	Accepted    int64 `json:"accepted"`       // 202
	PlaceFailed int64 `json:"place_failed"`
	Reserved    int64 `json:"reserved"`
	ReachedPaid int64 `json:"reached_paid"`
	// Outcomes.
	Rejected  int64 `json:"rejected"`
	Paid      int64 `json:"paid"` // paid and kept (neither shipped nor cancelled)
	Shipped   int64 `json:"shipped"`
	Cancelled int64 `json:"cancelled"` // by the customer, before or after paying
	TimedOut  int64 `json:"timed_out"` // cancelled by the payment timeout
	Declined  int64 `json:"declined"`
	Failed    int64 `json:"failed"`    // an answer the flow could not go on from (see Errors)
	InFlight  int64 `json:"in_flight"` // no outcome when the drain ended
	// AwaitingTimeout counts the abandoned orders among InFlight whose
	// payment timeout had not cancelled them by the end.
	AwaitingTimeout int64 `json:"awaiting_timeout"`

	AcceptedPerSec float64 `json:"accepted_per_s"`
	PaidPerSec     float64 `json:"paid_per_s"`

	Latency []latency `json:"latency"`

	Skipped   int64            `json:"skipped,omitempty"` // open loop: starts refused by the in-flight bound
	Parked    int64            `json:"parked,omitempty"`
	Rested    time.Duration    `json:"rested_ns,omitempty"`
	Retries   map[string]int64 `json:"retries"`
	RetryWait time.Duration    `json:"retry_wait_ns"`
	// Unreachable counts, by kind of request, the sends repeated because
	// the server did not answer (killed, restarting), and UnreachableWait
	// the time waited before them: neither is an error.
	Unreachable     map[string]int64 `json:"unreachable_retries"`
	UnreachableWait time.Duration    `json:"unreachable_wait_ns"`
	Errors          map[string]int64 `json:"errors"`
	Requests        map[string]int64 `json:"requests"`

	Hot        *hotReport     `json:"hot,omitempty"`
	Backlog    *backlogReport `json:"backlog,omitempty"`
	Violations []string       `json:"violations"`
}

type latency struct {
	Name string `json:"name"`
	stats
}

// hotReport is a flash sale's result: what sold, what was turned away,
// and the SKU's final catalog entry.
type hotReport struct {
	SKU           string        `json:"sku"`
	Stock         int64         `json:"stock"`
	Sold          int64         `json:"sold"`     // units of orders paid and not cancelled
	SoldOut       int64         `json:"sold_out"` // orders rejected for want of stock
	FirstSoldOut  time.Duration `json:"first_sold_out_ns,omitempty"`
	OnHand        int64         `json:"on_hand"`
	Reserved      int64         `json:"reserved"`
	Available     int64         `json:"available"`
	Held          int64         `json:"held"` // shipped (stock - on hand) + reserved
	CatalogRead   bool          `json:"catalog_read"`
	HeldAgreement string        `json:"held_agreement"`
	Violations    []string      `json:"violations"`
}

func (r *runner) summarize(ran, drained time.Duration) *summary {
	s := &summary{
		Mode: r.cfg.Mode, Pay: r.cfg.Pay, Customers: r.cfg.Customers, SKUs: len(r.skus), RunID: r.cfg.RunID,
		Ran: ran, Drained: drained,
		Attempts: r.attempts.Load(), Accepted: r.accepted.Load(), PlaceFailed: r.placeFailed.Load(),
		Reserved: r.reserved.Load(), ReachedPaid: r.paid.Load(),
		Rejected: r.rejected.Load(), Paid: r.keptPaid.Load(), Shipped: r.shipped.Load(), Cancelled: r.cancelled.Load(),
		TimedOut: r.timedOut.Load(), Declined: r.declined.Load(), Failed: r.failed.Load(), InFlight: r.inFlight(),
		Skipped: r.skipped.Load(), Parked: r.parked.Load(), Rested: time.Duration(r.rested.Load()),
		Retries: r.cl.retries.snapshot(), Unreachable: r.cl.unreachable.snapshot(), Errors: r.cl.errors.snapshot(), Requests: r.cl.requests.snapshot(),
		Violations: []string{},
	}
	if r.cfg.Mode == "open" {
		s.Rate, s.MaxInFlight = r.cfg.Rate, r.cfg.MaxInFlight
	} else {
		s.Shoppers = r.cfg.Shoppers
	}
	// Abandoned orders settle in their watcher: timed out, or failed.
	// Those that did neither are still waiting for the timeout.
	s.AwaitingTimeout = r.abandoned.Load() - r.watcherSettled.Load()
	r.cl.waitMu.Lock()
	s.RetryWait = r.cl.retryWait
	s.UnreachableWait = r.cl.unreachableWait
	r.cl.waitMu.Unlock()
	if secs := ran.Seconds(); secs > 0 {
		s.AcceptedPerSec = float64(s.Accepted) / secs
		s.PaidPerSec = float64(s.ReachedPaid) / (ran + drained).Seconds()
	}
	s.Latency = []latency{
		{"place → 202", r.toAccepted.Stats()},
		{"placed → decided", r.toDecided.Stats()},
		{"placed → paid", r.toPaid.Stats()},
		{"timer lateness", r.lateness.Stats()},
		{"release delay", r.release.Stats()},
	}
	if r.cfg.Mode == "open" {
		s.Latency = append(s.Latency, latency{"start lag", r.startLag.Stats()})
	}
	if sum := s.Rejected + s.Paid + s.Shipped + s.Cancelled + s.TimedOut + s.Declined + s.Failed + s.InFlight; sum != s.Accepted {
		s.Violations = append(s.Violations, fmt.Sprintf("the generator's own accounting: %d accepted, %d in outcomes", s.Accepted, sum))
	}
	return s
}

// checkHot reads the flash sale's SKU and checks it against what sold:
// never more sold than the stock, the catalog never holding more than it
// had, and, once no order is in flight, the catalog holding exactly the
// units of the paid orders (cancelled ones released; that release is
// asynchronous, so it is given a few seconds).
func (r *runner) checkHot(ctx context.Context, inFlight int64) *hotReport {
	h := &hotReport{SKU: r.hotSKU, Stock: r.cfg.Stock, Sold: r.soldUnits.Load(), SoldOut: r.rejected.Load(), Violations: []string{}}
	if f := r.firstRejected.Load(); f > 0 {
		h.FirstSoldOut = time.Duration(f)
	}
	if h.Sold > h.Stock {
		h.Violations = append(h.Violations, fmt.Sprintf("oversold: %d units of %s paid for, stock %d", h.Sold, h.SKU, h.Stock))
	}
	read := func() error {
		var v skuView
		if _, err := r.cl.do(ctx, call{kind: "GET /v1/skus/{sku}", method: "GET", url: "/v1/skus/" + r.hotSKU, role: auth.RoleAdmin, sub: "ordoload", want: 200}, &v); err != nil {
			return err
		}
		h.OnHand, h.Reserved, h.Available = v.OnHand, v.Reserved, v.Available
		h.Held = h.Stock - v.OnHand + v.Reserved
		h.CatalogRead = true
		return nil
	}
	settle, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	err := pause.Until(settle, 50*time.Millisecond, 500*time.Millisecond, func() (bool, error) {
		if err := read(); err != nil {
			return false, err
		}
		return inFlight > 0 || h.Held == h.Sold, nil
	})
	if !h.CatalogRead {
		h.HeldAgreement = fmt.Sprintf("not checked: the catalog could not be read (%v)", err)
		return h
	}
	switch {
	case h.Reserved > h.OnHand || h.Available < 0 || h.Held > h.Stock:
		h.Violations = append(h.Violations, fmt.Sprintf("the catalog holds more than the stock: %s on hand %d, reserved %d, available %d (stock %d)",
			h.SKU, h.OnHand, h.Reserved, h.Available, h.Stock))
	case inFlight > 0:
		h.HeldAgreement = fmt.Sprintf("not checked: %d orders in flight", inFlight)
	case h.Held != h.Sold:
		h.Violations = append(h.Violations, fmt.Sprintf("the catalog holds %d units of %s (shipped and reserved) but %d were sold", h.Held, h.SKU, h.Sold))
	default:
		h.HeldAgreement = "the catalog holds exactly the units sold"
	}
	return h
}

func ms(d time.Duration) string {
	return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond))
}

func msCol(d time.Duration) string {
	return fmt.Sprintf("%9.1f", float64(d)/float64(time.Millisecond))
}

// write prints the summary for people.
func (s *summary) write(w io.Writer) {
	var b strings.Builder
	if s.Mode == "open" {
		fmt.Fprintf(&b, "ordoload: open loop at %.1f orders/s (at most %d in flight), %d customers", s.Rate, s.MaxInFlight, s.Customers)
	} else {
		fmt.Fprintf(&b, "ordoload: closed loop, %d shoppers, %d customers", s.Shoppers, s.Customers)
	}
	fmt.Fprintf(&b, ", pay %s, %d SKU(s), run %s: load %.1fs, drain %.1fs\n", s.Pay, s.SKUs, s.RunID, s.Ran.Seconds(), s.Drained.Seconds())
	fmt.Fprintf(&b, "orders: %d placed (202) of %d attempts, %d refused; %d reserved, %d reached paid\n", s.Accepted, s.Attempts, s.PlaceFailed, s.Reserved, s.ReachedPaid)
	fmt.Fprintf(&b, "outcomes: rejected %d, paid %d, shipped %d, cancelled %d, timed out %d, declined %d, failed %d, in flight %d",
		s.Rejected, s.Paid, s.Shipped, s.Cancelled, s.TimedOut, s.Declined, s.Failed, s.InFlight)
	if s.AwaitingTimeout > 0 {
		fmt.Fprintf(&b, " (%d abandoned, their timeout not yet fired)", s.AwaitingTimeout)
	}
	fmt.Fprintf(&b, "\nthroughput: %.1f placed/s over the load, %.1f paid/s over load and drain\n", s.AcceptedPerSec, s.PaidPerSec)
	fmt.Fprintf(&b, "\n%-16s %7s %9s %9s %9s %9s %9s %9s   (ms)\n", "", "count", "mean", "p50", "p90", "p99", "p99.9", "max")
	for _, l := range s.Latency {
		if l.Count == 0 {
			fmt.Fprintf(&b, "%-16s %7d   (no samples)\n", l.Name, 0)
			continue
		}
		fmt.Fprintf(&b, "%-16s %7d %s %s %s %s %s %s", l.Name, l.Count, msCol(l.Mean), msCol(l.P50), msCol(l.P90), msCol(l.P99), msCol(l.P999), msCol(l.Max))
		if l.Early > 0 {
			fmt.Fprintf(&b, "   (%d early, counted as 0)", l.Early)
		}
		b.WriteString("\n")
	}
	if s.Mode == "open" {
		fmt.Fprintf(&b, "\ngenerator: %d starts skipped (in-flight bound reached)", s.Skipped)
		if s.Skipped > 0 {
			b.WriteString(": the generator fell behind its rate")
		}
		b.WriteString("\n")
	}
	b.WriteString("\n")
	writeCounts(&b, "retried after Retry-After", s.Retries)
	if len(s.Retries) > 0 {
		fmt.Fprintf(&b, "  (%.1fs waited before retrying", s.RetryWait.Seconds())
		if s.Parked > 0 {
			fmt.Fprintf(&b, "; too_many_unpaid_orders: %d times a customer rested %.1fs in all, and the shopper served another", s.Parked, s.Rested.Seconds())
		}
		b.WriteString(")\n")
	}
	if len(s.Unreachable) > 0 {
		writeCounts(&b, "sent again after the server did not answer", s.Unreachable)
		fmt.Fprintf(&b, "  (%.1fs waited before sending again)\n", s.UnreachableWait.Seconds())
	}
	writeCounts(&b, "errors", s.Errors)
	writeCounts(&b, "requests", s.Requests)
	if polls := s.Requests["GET /v1/orders/{id}"]; s.Accepted > 0 {
		fmt.Fprintf(&b, "  (%.1f status polls per placed order)\n", float64(polls)/float64(s.Accepted))
	}
	if s.Backlog != nil {
		s.Backlog.write(&b)
	}
	if h := s.Hot; h != nil {
		fmt.Fprintf(&b, "\nflash sale %s: stock %d, sold %d, sold out to %d orders", h.SKU, h.Stock, h.Sold, h.SoldOut)
		if h.FirstSoldOut > 0 {
			fmt.Fprintf(&b, " (first after %.1fs)", h.FirstSoldOut.Seconds())
		}
		if h.CatalogRead {
			fmt.Fprintf(&b, "\n  catalog: on hand %d, reserved %d, available %d: holds %d", h.OnHand, h.Reserved, h.Available, h.Held)
		}
		if h.HeldAgreement != "" {
			fmt.Fprintf(&b, "; %s", h.HeldAgreement)
		}
		b.WriteString("\n")
	}
	if len(s.Violations) == 0 {
		b.WriteString("\ninvariants: none violated\n")
	} else {
		b.WriteString("\nINVARIANT VIOLATED:\n")
		for _, v := range s.Violations {
			fmt.Fprintf(&b, "  %s\n", v)
		}
	}
	_, _ = io.WriteString(w, b.String())
}

func writeCounts(b *strings.Builder, title string, m map[string]int64) {
	if len(m) == 0 {
		fmt.Fprintf(b, "%s: none\n", title)
		return
	}
	fmt.Fprintf(b, "%s:\n", title)
	for _, k := range sortedKeys(m) {
		fmt.Fprintf(b, "  %-44s %d\n", k, m[k])
	}
}
