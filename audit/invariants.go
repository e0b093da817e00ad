package audit

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/ordo-shop/ordo/aggregates/inventory"
	"github.com/ordo-shop/ordo/aggregates/order"
	"github.com/ordo-shop/ordo/aggregates/payment"
	"github.com/ordo-shop/ordo/eventlog"
	"github.com/ordo-shop/ordo/events"
	"github.com/ordo-shop/ordo/internal/psp"
)

// The invariants [CheckInvariants] checks, by name. Each quantity is
// computed from the events themselves, not from the process managers'
// or the command handlers' memory.
const (
	// InvStockOversold: no SKU ever has more reserved than on hand, or a
	// negative on hand; no order releases or sells more than it holds.
	InvStockOversold = "stock.oversold"
	// InvStockOnHand: on hand as the SKU's events fold it (and as an
	// outside reader reports it, [InvariantOptions.ReportedOnHand]) =
	// Σ adjustments − Σ sold.
	InvStockOnHand = "stock.on_hand"
	// InvStockAdjustments: Σ adjustments = what the caller put in
	// ([InvariantOptions.StockIn]); checked only when given.
	InvStockAdjustments = "stock.adjustments"
	// InvStockReserved: stock stays reserved only for an order that still
	// needs it: one in progress or paid (awaiting shipment).
	InvStockReserved = "stock.reserved"
	// InvStockSoldUnshipped: stock is sold only for shipped or delivered
	// orders.
	InvStockSoldUnshipped = "stock.sold_unshipped"
	// InvOrderIntermediate: no order placed, stock_reserved or
	// payment_pending (in progress unless settled).
	InvOrderIntermediate = "order.intermediate"
	// InvOrderMissing: every order the caller placed is in the log
	// ([InvariantOptions.Orders]); checked only when given.
	InvOrderMissing = "order.missing"
	// InvPaymentKept: every captured payment belongs to a paid, shipped or
	// delivered order, or is refunded in full.
	InvPaymentKept = "payment.kept"
	// InvPaymentPending: no payment requested or authorized (in progress
	// unless settled).
	InvPaymentPending = "payment.pending"
	// InvPSPMoney: the PSP agrees ([InvariantOptions.PSP]): every captured
	// intent pays a kept order, every refund is full, nothing is pending,
	// and its status matches the payment's in the log.
	InvPSPMoney = "psp.money"
	// InvCommandIDTwice: no commit id appears twice.
	InvCommandIDTwice = "command.id_twice"
	// InvCommandAppliedTwice: no two commits on one aggregate have the
	// same causation and the same events; no order or payment records an
	// event type twice; no SKU reserves, releases or sells twice for one
	// order.
	InvCommandAppliedTwice = "command.applied_twice"
	// InvCommandCausation: every commit the process managers or the PSP
	// sync made is caused by a commit in the log, a timer or a PSP event.
	InvCommandCausation = "command.causation"
	// InvDLQ: no dead letters ([InvariantOptions.DeadLetters]).
	InvDLQ = "dlq"
)

// Invariants are the names of every invariant, in report order.
var Invariants = []string{InvStockOversold, InvStockOnHand, InvStockAdjustments, InvStockReserved, InvStockSoldUnshipped,
	InvOrderIntermediate, InvOrderMissing, InvPaymentKept, InvPaymentPending, InvPSPMoney,
	InvCommandIDTwice, InvCommandAppliedTwice, InvCommandCausation, InvDLQ}

// PSP is the payment provider's side of the money: its intents as it
// knows them now (the local simulator has this method).
type PSP interface {
	Intents() []psp.Intent
}

// InvariantOptions say what [CheckInvariants] checks the log against
// besides the log itself. Each of Orders, StockIn, ReportedOnHand, PSP
// and DeadLetters is optional: without it the invariant that needs it is
// not checked (and not listed in [InvariantReport.Checked]).
type InvariantOptions struct {
	// Registry decodes events (required).
	Registry *events.Registry
	// Settled says the shop is quiescent (no request running, the
	// process managers caught up): what is in progress on a running shop
	// — an order or payment not yet settled, a refund or a release not
	// yet made — is then a violation of the invariant it would break.
	Settled bool
	// Orders are ids of orders known to have been placed (order.missing).
	Orders []string
	// StockIn is, per SKU, the units known to have been put in
	// (stock.adjustments).
	StockIn map[string]int64
	// ReportedOnHand is, per SKU, on hand as another reader reports it
	// (the API), compared with the log's (stock.on_hand).
	ReportedOnHand map[string]int64
	// PSP, if set, is read after the log (psp.money).
	PSP PSP
	// DeadLetters, if set, counts the process managers' dead letters
	// (dlq).
	DeadLetters func(context.Context) (int, error)
}

// Violation is one breach of an invariant.
type Violation struct {
	Invariant string `json:"invariant"`
	Message   string `json:"message"`
}

func (v Violation) String() string { return v.Invariant + ": " + v.Message }

// InProgress is something a running shop has not finished yet: not a
// violation by itself, but one of Invariant if it never finishes (and so
// under [InvariantOptions.Settled]).
type InProgress struct {
	Invariant string `json:"invariant"`
	// Type and ID name the aggregate; Status is its status.
	Type   string `json:"type"`
	ID     string `json:"id"`
	Status string `json:"status"`
	// Waiting says what it waits for.
	Waiting string `json:"waiting"`
	// Since is when the aggregate's last commit was recorded.
	Since time.Time `json:"since"`
}

func (p InProgress) String() string {
	return fmt.Sprintf("%s %s %s since %s: %s (%s)", p.Type, p.ID, p.Status, p.Since.UTC().Format(time.RFC3339), p.Waiting, p.Invariant)
}

// StockCounts add up the units of every SKU.
type StockCounts struct {
	SKUs     int   `json:"skus"`
	Adjusted int64 `json:"adjusted"`
	Sold     int64 `json:"sold"`
	OnHand   int64 `json:"on_hand"`
	Reserved int64 `json:"reserved"`
}

// PSPCounts count the PSP's intents.
type PSPCounts struct {
	Intents  int `json:"intents"`
	Captured int `json:"captured"`
	Refunded int `json:"refunded"`
}

// InvariantReport is what [CheckInvariants] found.
type InvariantReport struct {
	// Settled is the option the check ran with.
	Settled bool `json:"settled"`
	// Checked are the invariants checked, in report order.
	Checked []string `json:"checked"`
	// Commits is how many commits were read; Positions the last sequence
	// read of each aggregate type's stream.
	Commits   int               `json:"commits"`
	Positions map[string]uint64 `json:"positions"`
	// Orders and Payments count the aggregates by status.
	Orders   map[string]int `json:"orders"`
	Payments map[string]int `json:"payments"`
	// EverCaptured counts the payments that captured money, and
	// RefundedInFull those of them refunded in full.
	EverCaptured   int         `json:"ever_captured"`
	RefundedInFull int         `json:"refunded_in_full"`
	Stock          StockCounts `json:"stock"`
	// PSP is set when a PSP was given.
	PSP *PSPCounts `json:"psp,omitempty"`
	// DeadLetters is set when they were counted.
	DeadLetters *int `json:"dead_letters,omitempty"`

	Violations []Violation  `json:"violations"`
	InProgress []InProgress `json:"in_progress"`
}

// OK reports whether no invariant was violated.
func (r InvariantReport) OK() bool { return len(r.Violations) == 0 }

// ByInvariant counts the violations by invariant.
func (r InvariantReport) ByInvariant() map[string]int {
	n := map[string]int{}
	for _, v := range r.Violations {
		n[v.Invariant]++
	}
	return n
}

// Summary is the report's counts in a few lines of text, the
// violations counted by invariant on the last; "-" marks an invariant
// not checked (its input was not given).
func (r InvariantReport) Summary() string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "%d commits read (orders to seq %d, inventory to %d, payments to %d)\n", r.Commits,
		r.Positions[eventlog.TypeOrder], r.Positions[eventlog.TypeInventory], r.Positions[eventlog.TypePayment])
	fmt.Fprintf(&sb, "  orders: %s\n", countString(r.Orders))
	fmt.Fprintf(&sb, "  payments: %s; %d ever captured (%d refunded in full)", countString(r.Payments), r.EverCaptured, r.RefundedInFull)
	if r.PSP != nil {
		fmt.Fprintf(&sb, "; PSP: %d intents, %d captured, %d refunded", r.PSP.Intents, r.PSP.Captured, r.PSP.Refunded)
	}
	sb.WriteString("\n")
	fmt.Fprintf(&sb, "  stock: %d SKUs, %d units adjusted in, %d sold, %d on hand, %d reserved\n", r.Stock.SKUs, r.Stock.Adjusted, r.Stock.Sold, r.Stock.OnHand, r.Stock.Reserved)
	if r.DeadLetters != nil {
		fmt.Fprintf(&sb, "  dead letters: %d\n", *r.DeadLetters)
	}
	fmt.Fprintf(&sb, "  in progress: %d", len(r.InProgress))
	if r.Settled {
		sb.WriteString(" (settled: each is a violation)")
	}
	sb.WriteString("\n")
	n := r.ByInvariant()
	var parts []string
	for _, inv := range Invariants {
		if slices.Contains(r.Checked, inv) {
			parts = append(parts, fmt.Sprintf("%s %d", inv, n[inv]))
		} else {
			parts = append(parts, inv+" -")
		}
	}
	fmt.Fprintf(&sb, "  violations by invariant: %s (total %d)\n", strings.Join(parts, ", "), len(r.Violations))
	return sb.String()
}

// errReadEnough stops a replay at the position read before it.
var errReadEnough = errors.New("read up to the position")

// CheckInvariants reads every commit of the three aggregate streams and
// checks the invariants (see the Inv constants) against them and against
// what opts gives. A violation is no error: CheckInvariants returns an
// error only when it could not check (the log did not answer, a commit
// or event does not decode: 'orderctl verify' names such damage).
//
// The log of a running shop changes while it is read. The check reads
// each stream up to a position taken before any is read, inventory's and
// payments' before orders' (an effect is stored after its cause: stock
// reserved or sold for an order, or a payment for it, is read together
// with the order's commit that caused it). What a process manager has
// not caught up with yet — an order or payment in progress, a release,
// a sale or a refund not yet made, the PSP ahead of the log — is listed
// in [InvariantReport.InProgress], a violation only with
// [InvariantOptions.Settled]. Causes are looked up in the commits stored
// after the positions too. Memory grows with the number of commits.
func CheckInvariants(ctx context.Context, log Log, opts InvariantOptions) (InvariantReport, error) {
	if opts.Registry == nil {
		return InvariantReport{}, errors.New("audit: a registry is required")
	}
	c := &invariantCheck{opts: opts, rep: InvariantReport{Settled: opts.Settled, Positions: map[string]uint64{},
		Orders: map[string]int{}, Payments: map[string]int{}, Violations: []Violation{}, InProgress: []InProgress{}},
		byAgg: map[string]*aggCommits{}, commitIDs: map[string]string{}, orderStatus: map[string]order.Status{}}
	for _, inv := range Invariants {
		switch {
		case inv == InvStockAdjustments && opts.StockIn == nil,
			inv == InvOrderMissing && opts.Orders == nil,
			inv == InvPSPMoney && opts.PSP == nil,
			inv == InvDLQ && opts.DeadLetters == nil:
			continue
		}
		c.rep.Checked = append(c.rep.Checked, inv)
	}
	// Effects before causes: see above.
	for _, t := range []string{eventlog.TypeInventory, eventlog.TypePayment, eventlog.TypeOrder} {
		last, err := log.LastSeq(ctx, t)
		if err != nil {
			return InvariantReport{}, err
		}
		c.rep.Positions[t] = last
	}
	for _, t := range Types {
		if err := c.read(ctx, log, t); err != nil {
			return InvariantReport{}, err
		}
	}
	// Commits stored since: only their ids, as causes of what was read.
	later := map[string]bool{}
	for _, t := range Types {
		err := log.ReplayRaw(ctx, t, c.rep.Positions[t]+1, func(m eventlog.StoredMsg) error {
			cm, err := events.Unmarshal(m.Data)
			if err != nil {
				return fmt.Errorf("%s seq %d: %w", m.Stream, m.Seq, err)
			}
			later[cm.CommitID] = true
			return nil
		})
		if err != nil {
			return InvariantReport{}, err
		}
	}
	c.commands(later)
	c.orders()
	c.inventory()
	logPayment := c.payments()
	if opts.PSP != nil {
		c.psp(logPayment, opts.PSP.Intents())
	}
	if opts.DeadLetters != nil {
		n, err := opts.DeadLetters(ctx)
		if err != nil {
			return InvariantReport{}, fmt.Errorf("count dead letters: %w", err)
		}
		c.rep.DeadLetters = &n
		if n != 0 {
			c.fail(InvDLQ, "%d dead letters (orderctl dlq list)", n)
		}
	}
	return c.rep, nil
}

// aggCommits is one aggregate's commits, in log order, with their
// decoded events.
type aggCommits struct {
	typ, id string
	commits []*events.Commit
	events  [][]events.Payload // per commit
}

func (a *aggCommits) since() time.Time {
	return a.commits[len(a.commits)-1].Metadata.RecordedAt
}

type invariantCheck struct {
	opts        InvariantOptions
	rep         InvariantReport
	byAgg       map[string]*aggCommits
	keys        []string // of byAgg, in the order first seen
	commitIDs   map[string]string
	orderStatus map[string]order.Status
}

func (c *invariantCheck) fail(inv, format string, a ...any) {
	c.rep.Violations = append(c.rep.Violations, Violation{Invariant: inv, Message: fmt.Sprintf(format, a...)})
}

// pending records what a running shop has not finished yet: in
// progress, or a violation of inv when the shop is settled.
func (c *invariantCheck) pending(inv string, a *aggCommits, status, waiting string) {
	if c.opts.Settled {
		c.fail(inv, "%s %s is %s: %s", a.typ, a.id, status, waiting)
		return
	}
	c.rep.InProgress = append(c.rep.InProgress, InProgress{Invariant: inv, Type: a.typ, ID: a.id, Status: status, Waiting: waiting, Since: a.since()})
}

// read reads aggType's stream up to its position.
func (c *invariantCheck) read(ctx context.Context, log Log, aggType string) error {
	upto := c.rep.Positions[aggType]
	if upto == 0 {
		return nil
	}
	err := log.ReplayRaw(ctx, aggType, 1, func(m eventlog.StoredMsg) error {
		if m.Seq > upto {
			return errReadEnough
		}
		cm, err := events.Unmarshal(m.Data)
		if err != nil {
			return fmt.Errorf("%s seq %d: %w (run orderctl verify)", m.Stream, m.Seq, err)
		}
		evs, err := c.opts.Registry.DecodeAll(cm)
		if err != nil {
			return fmt.Errorf("%s seq %d: %w (run orderctl verify)", m.Stream, m.Seq, err)
		}
		c.rep.Commits++
		if prev, ok := c.commitIDs[cm.CommitID]; ok {
			c.fail(InvCommandIDTwice, "commit id %s used by %s and by %s %s", cm.CommitID, prev, cm.AggregateType, cm.AggregateID)
		}
		c.commitIDs[cm.CommitID] = cm.AggregateType + " " + cm.AggregateID
		k := aggType + "/" + cm.AggregateID
		a := c.byAgg[k]
		if a == nil {
			a = &aggCommits{typ: aggType, id: cm.AggregateID}
			c.byAgg[k] = a
			c.keys = append(c.keys, k)
		}
		a.commits = append(a.commits, cm)
		a.events = append(a.events, evs)
		if m.Seq == upto {
			return errReadEnough
		}
		return nil
	})
	if errors.Is(err, errReadEnough) {
		return nil
	}
	return err
}

// each calls fn with every aggregate of aggType read, in the order first
// seen.
func (c *invariantCheck) each(aggType string, fn func(a *aggCommits)) {
	for _, k := range c.keys {
		if a := c.byAgg[k]; a.typ == aggType {
			fn(a)
		}
	}
}

// commands checks causation and double application, from the
// envelopes. later holds the ids of commits stored after the positions.
func (c *invariantCheck) commands(later map[string]bool) {
	for _, k := range c.keys {
		a := c.byAgg[k]
		effects := map[string]string{}
		for _, cm := range a.commits {
			cause := cm.Metadata.CausationID
			if cause == "" {
				continue // an API command: its id is the idempotency key's
			}
			types := make([]string, len(cm.Events))
			for i, ev := range cm.Events {
				types[i] = ev.Type
			}
			key := cause + " " + strings.Join(types, ",")
			if prev, ok := effects[key]; ok {
				c.fail(InvCommandAppliedTwice, "%s %s: commits %s and %s both apply %s", a.typ, a.id, prev, cm.CommitID, key)
			}
			effects[key] = cm.CommitID
			byUs := strings.HasPrefix(cm.Metadata.Actor, "sagas:") || strings.HasPrefix(cm.Metadata.Actor, "psp:")
			_, known := c.commitIDs[cause]
			known = known || later[cause]
			if byUs && !known && !strings.HasPrefix(cause, "timer:") && !strings.HasPrefix(cause, "psp-event:") {
				c.fail(InvCommandCausation, "%s %s v%d (%s by %s) is caused by %q, which is no commit, timer or PSP event", a.typ, a.id, cm.Version, cm.CommitID, cm.Metadata.Actor, cause)
			}
		}
	}
}

// inProgress reports whether an order's status is one the checkout
// moves on by itself.
func inProgress(s order.Status) bool {
	return s == order.StatusPlaced || s == order.StatusStockReserved || s == order.StatusPaymentPending
}

// kept reports whether an order keeps its payment.
func kept(s order.Status) bool {
	return s == order.StatusPaid || s == order.StatusShipped || s == order.StatusDelivered
}

func (c *invariantCheck) orders() {
	c.each(eventlog.TypeOrder, func(a *aggCommits) {
		s := order.Initial(a.id)
		seen := map[string]bool{}
		for _, evs := range a.events {
			for _, ev := range evs {
				s = order.Evolve(s, ev)
				if seen[ev.EventType()] {
					c.fail(InvCommandAppliedTwice, "order %s: %s twice", a.id, ev.EventType())
				}
				seen[ev.EventType()] = true
			}
		}
		c.orderStatus[a.id] = s.Status
		c.rep.Orders[string(s.Status)]++
		if inProgress(s.Status) {
			c.pending(InvOrderIntermediate, a, string(s.Status), "the checkout to move it on")
		}
	})
	for _, id := range c.opts.Orders {
		if _, ok := c.orderStatus[id]; !ok {
			c.fail(InvOrderMissing, "order %s was placed but is not in the log", id)
		}
	}
}

// inventory folds every SKU independently of the aggregate's Evolve,
// and with it.
func (c *invariantCheck) inventory() {
	st := &c.rep.Stock
	c.each(eventlog.TypeInventory, func(a *aggCommits) {
		st.SKUs++
		folded := inventory.Initial(a.id)
		var adj, sold, reserved int64
		held := map[string]int64{}
		seen := map[string]bool{}
		for _, evs := range a.events {
			for _, ev := range evs {
				folded = inventory.Evolve(folded, ev)
				switch ev := ev.(type) {
				case events.InventoryStockAdjusted:
					adj += ev.Delta
				case events.InventoryRestocked:
					adj += ev.Qty
				case events.InventoryReserved:
					held[ev.OrderID] += ev.Qty
					reserved += ev.Qty
				case events.InventoryReleased:
					if ev.Qty != held[ev.OrderID] {
						c.fail(InvStockOversold, "%s: order %s releases %d but holds %d", a.id, ev.OrderID, ev.Qty, held[ev.OrderID])
					}
					reserved -= ev.Qty
					delete(held, ev.OrderID)
				case events.InventoryCommitted:
					if ev.Qty != held[ev.OrderID] {
						c.fail(InvStockOversold, "%s: order %s sells %d but holds %d", a.id, ev.OrderID, ev.Qty, held[ev.OrderID])
					}
					// The order's shipment is stored before the sale it
					// causes, and orders are read to a later position.
					if st := c.orderStatus[ev.OrderID]; st != order.StatusShipped && st != order.StatusDelivered {
						c.fail(InvStockSoldUnshipped, "%s: %d sold for order %s, which is %s", a.id, ev.Qty, ev.OrderID, statusName(st))
					}
					reserved -= ev.Qty
					sold += ev.Qty
					delete(held, ev.OrderID)
				}
				if o := orderOf(ev); o != "" {
					key := ev.EventType() + " " + o
					if seen[key] {
						c.fail(InvCommandAppliedTwice, "%s: %s twice", a.id, key)
					}
					seen[key] = true
				}
				if onHand := adj - sold; onHand < 0 || reserved < 0 || reserved > onHand {
					c.fail(InvStockOversold, "%s after %s: on hand %d, reserved %d", a.id, ev.EventType(), onHand, reserved)
				}
			}
		}
		if folded.OnHand != adj-sold {
			c.fail(InvStockOnHand, "%s: the SKU's events fold to on hand %d; adjustments %d − sold %d = %d", a.id, folded.OnHand, adj, sold, adj-sold)
		}
		if got, ok := c.opts.ReportedOnHand[a.id]; ok && got != adj-sold {
			c.fail(InvStockOnHand, "%s: reported on hand %d; adjustments %d − sold %d = %d", a.id, got, adj, sold, adj-sold)
		}
		if want, ok := c.opts.StockIn[a.id]; ok && adj != want {
			c.fail(InvStockAdjustments, "%s: adjustments add up to %d, %d were put in", a.id, adj, want)
		}
		if reserved < 0 {
			c.fail(InvStockReserved, "%s: %d units reserved", a.id, reserved)
		}
		orders := make([]string, 0, len(held))
		for o := range held {
			orders = append(orders, o)
		}
		sort.Strings(orders)
		for _, o := range orders {
			switch s, ok := c.orderStatus[o]; {
			case !ok:
				// Its placement is stored before the reservation it
				// causes, and orders are read to a later position.
				c.fail(InvStockReserved, "%s: %d units reserved for order %s, which is not in the log", a.id, held[o], o)
			case s == order.StatusPaid:
				// Held for the warehouse: sold when it ships.
			case inProgress(s):
				if c.opts.Settled {
					c.fail(InvStockReserved, "%s: %d units reserved for order %s, which is %s", a.id, held[o], o, s)
				} // else: listed with its order
			default:
				c.pending(InvStockReserved, a, fmt.Sprintf("holding %d for order %s (%s)", held[o], o, s),
					"the checkout to release or sell it")
			}
		}
		st.OnHand += adj - sold
		st.Reserved += reserved
		st.Sold += sold
		st.Adjusted += adj
	})
}

func statusName(s order.Status) string {
	if s == "" {
		return "not in the log"
	}
	return string(s)
}

func orderOf(ev events.Payload) string {
	switch ev := ev.(type) {
	case events.InventoryReserved:
		return ev.OrderID
	case events.InventoryReleased:
		return ev.OrderID
	case events.InventoryCommitted:
		return ev.OrderID
	}
	return ""
}

// payments checks the payments and returns each one's state by id.
func (c *invariantCheck) payments() map[string]payment.State {
	logPayment := map[string]payment.State{}
	c.each(eventlog.TypePayment, func(a *aggCommits) {
		s := payment.Initial(a.id)
		seen := map[string]bool{}
		var capturedAmt, refundedAmt int64
		for _, evs := range a.events {
			for _, ev := range evs {
				s = payment.Evolve(s, ev)
				if seen[ev.EventType()] {
					c.fail(InvCommandAppliedTwice, "payment %s: %s twice", a.id, ev.EventType())
				}
				seen[ev.EventType()] = true
				switch ev := ev.(type) {
				case events.PaymentCaptured:
					capturedAmt += ev.Amount.Amount
				case events.PaymentRefunded:
					refundedAmt += ev.Amount.Amount
				}
			}
		}
		logPayment[s.ID] = s
		c.rep.Payments[string(s.Status)]++
		if capturedAmt > 0 {
			c.rep.EverCaptured++
			ost := c.orderStatus[s.OrderID]
			full := refundedAmt == capturedAmt && s.Status == payment.StatusRefunded
			switch {
			case full:
				c.rep.RefundedInFull++
			case kept(ost) && refundedAmt == 0:
			case refundedAmt > capturedAmt:
				c.fail(InvPaymentKept, "payment %s captured %d for order %s (%s), refunded %d", a.id, capturedAmt, s.OrderID, statusName(ost), refundedAmt)
			default:
				// A capture the order has not taken yet, or whose refund
				// has not been made yet.
				c.pending(InvPaymentKept, a, string(s.Status), fmt.Sprintf("captured %d for order %s (%s), refunded %d", capturedAmt, s.OrderID, statusName(ost), refundedAmt))
			}
		}
		if s.Status == payment.StatusRequested || s.Status == payment.StatusAuthorized {
			c.pending(InvPaymentPending, a, string(s.Status), "the PSP's answer or the payment timeout")
		}
	})
	return logPayment
}

// psp compares the money at the PSP with the log. The PSP is read after
// the log: it may be ahead of it (a webhook on its way).
func (c *invariantCheck) psp(logPayment map[string]payment.State, intents []psp.Intent) {
	counts := &PSPCounts{Intents: len(intents)}
	c.rep.PSP = counts
	for _, in := range intents {
		a := &aggCommits{typ: "intent", id: in.ID}
		waiting := func(format string, args ...any) {
			if c.opts.Settled {
				c.fail(InvPSPMoney, format, args...)
				return
			}
			c.rep.InProgress = append(c.rep.InProgress, InProgress{Invariant: InvPSPMoney, Type: a.typ, ID: a.id,
				Status: string(in.Status), Waiting: fmt.Sprintf(format, args...), Since: in.Created})
		}
		lp, ok := logPayment[in.Reference]
		switch in.Status {
		case psp.StatusCaptured:
			counts.Captured++
			if ost := c.orderStatus[in.OrderID]; !kept(ost) {
				waiting("the PSP holds the money of intent %s for order %s, which is %s", in.ID, in.OrderID, statusName(ost))
			}
			if !ok || lp.Status != payment.StatusCaptured {
				waiting("intent %s is captured at the PSP, its payment %s is %q in the log", in.ID, in.Reference, lp.Status)
			}
		case psp.StatusRefunded:
			counts.Refunded++
			if in.Refunded != in.Amount.Amount {
				c.fail(InvPSPMoney, "intent %s refunded %d of %d", in.ID, in.Refunded, in.Amount.Amount)
			}
			if !ok || lp.Status != payment.StatusRefunded {
				waiting("intent %s is refunded at the PSP, its payment %s is %q in the log", in.ID, in.Reference, lp.Status)
			}
		case psp.StatusRequiresPayment, psp.StatusAuthorized:
			waiting("intent %s for order %s still pending at the PSP", in.ID, in.OrderID)
		}
	}
}

func countString(m map[string]int) string {
	if len(m) == 0 {
		return "none"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, m[k])
	}
	return strings.Join(parts, ", ")
}
