package postgres

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ordo-shop/ordo/events"
	"github.com/ordo-shop/ordo/internal/pause"
)

// Order is an order as the read model shows it.
type Order struct {
	OrderID         string
	CustomerID      string
	Customer        events.Customer
	ShippingAddress events.Address
	Status          string
	// StatusReason says why an order was cancelled or rejected.
	StatusReason string
	Total        events.Money
	Lines        []Line // nil in listings
	Payment      Payment
	Shipment     Shipment
	CreatedAt    time.Time
	UpdatedAt    time.Time
	// Version is the order's event count; LastSeq the stream sequence of
	// its last commit.
	Version uint64
	LastSeq uint64
	// Degraded, when not nil, says that some of the order's commits
	// could not be applied and were set aside (quarantined): the view
	// may miss what they did. Only [Store.Order] fills it in.
	Degraded *Degradation
}

// Line is one line of an order.
type Line struct {
	SKU       string
	Qty       int64
	UnitPrice events.Money
	Amount    events.Money
}

// Payment is what the order knows of its payment. Status is one of the
// Payment* constants.
type Payment struct {
	Status      string
	PaymentID   string
	CheckoutURL string
}

// Shipment names the carrier and tracking number once the order shipped.
type Shipment struct {
	Carrier        string
	TrackingNumber string
}

// TimelineEntry is one status change of an order: the event that caused
// it, when, by whom and in which commit.
type TimelineEntry struct {
	Version       uint64
	Seq           uint64
	At            time.Time
	EventType     string
	Status        string
	Detail        string
	CommitID      string
	CausationID   string
	CorrelationID string
	Actor         string
}

// ErrOrderDegraded means the read model holds nothing of an order but
// commits of it that it set aside: it cannot say what the order is.
var ErrOrderDegraded = errors.New("the order's commits could not be applied to the read model")

// Order returns one order with its lines, or false if the read model has
// no such order. An order whose commits were quarantined comes with
// Degraded set; one of which the read model holds nothing else is
// [ErrOrderDegraded].
func (s *Store) Order(ctx context.Context, id string) (Order, bool, error) {
	var r orderRow
	var d struct {
		seq   *int64
		err   *string
		state *string
		since *time.Time
	}
	// One round trip: the order's lines come along as arrays (in line
	// order), and its open quarantine, if any, as the last columns.
	var skus []string
	var qtys, unitPrices, amounts []int64
	err := s.pool.QueryRow(ctx, "SELECT "+orderColumns+`, dq.seq, dq.error, dq.state, dq.quarantined_at,
			ol.skus, ol.qtys, ol.unit_prices, ol.amounts FROM `+viewSchema+`.orders
		LEFT JOIN LATERAL (SELECT q.seq, q.error, q.state, q.quarantined_at FROM ordo.projection_quarantine q
			JOIN ordo.projection_versions v ON v.projection = q.projection AND v.version = q.version AND v.state = 'live'
			WHERE q.projection = $2 AND q.aggregate_id = $1 AND q.state <> 'resolved' ORDER BY q.seq LIMIT 1) dq ON true
		LEFT JOIN LATERAL (SELECT array_agg(l.sku ORDER BY l.line_no) AS skus, array_agg(l.qty ORDER BY l.line_no) AS qtys,
				array_agg(l.unit_price ORDER BY l.line_no) AS unit_prices, array_agg(l.amount ORDER BY l.line_no) AS amounts
			FROM `+viewSchema+`.order_lines l WHERE l.order_id = $1) ol ON true
		WHERE order_id = $1`, id, Name).Scan(append(r.scanTargets(), &d.seq, &d.err, &d.state, &d.since, &skus, &qtys, &unitPrices, &amounts)...)
	if errors.Is(err, pgx.ErrNoRows) {
		deg, err := s.degradation(ctx, s.pool, id)
		if err != nil {
			return Order{}, false, err
		}
		if deg != nil {
			return Order{}, false, fmt.Errorf("order %s: %w (stream seq %d: %s)", id, ErrOrderDegraded, deg.Seq, deg.Error)
		}
		return Order{}, false, nil
	}
	if err != nil {
		return Order{}, false, fmt.Errorf("order status: order %s: %w", id, err)
	}
	o, err := r.view()
	if err != nil {
		return Order{}, false, err
	}
	if d.seq != nil {
		o.Degraded = &Degradation{Seq: uint64(*d.seq), Error: *d.err, State: *d.state, Since: d.since.UTC()}
	}
	if len(qtys) != len(skus) || len(unitPrices) != len(skus) || len(amounts) != len(skus) {
		return Order{}, false, fmt.Errorf("order status: lines of %s: %d skus, %d quantities, %d unit prices, %d amounts", id, len(skus), len(qtys), len(unitPrices), len(amounts))
	}
	o.Lines = make([]Line, len(skus))
	for i := range skus {
		o.Lines[i] = Line{SKU: skus[i], Qty: qtys[i],
			UnitPrice: events.Money{Amount: unitPrices[i], Currency: o.Total.Currency},
			Amount:    events.Money{Amount: amounts[i], Currency: o.Total.Currency}}
	}
	return o, true, nil
}

func (r *orderRow) view() (Order, error) {
	o := Order{
		OrderID: r.OrderID, CustomerID: r.CustomerID, Status: r.Status, StatusReason: r.StatusReason,
		Total:     events.Money{Amount: r.TotalAmount, Currency: r.Currency},
		Payment:   Payment{Status: r.PaymentStatus, PaymentID: r.PaymentID, CheckoutURL: r.CheckoutURL},
		Shipment:  Shipment{Carrier: r.Carrier, TrackingNumber: r.TrackingNumber},
		CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC(), Version: uint64(r.Version), LastSeq: uint64(r.LastSeq),
	}
	if err := json.Unmarshal([]byte(r.Customer), &o.Customer); err != nil {
		return Order{}, fmt.Errorf("order status: order %s customer: %w", r.OrderID, err)
	}
	if err := json.Unmarshal([]byte(r.ShippingAddress), &o.ShippingAddress); err != nil {
		return Order{}, fmt.Errorf("order status: order %s address: %w", r.OrderID, err)
	}
	return o, nil
}

// Timeline returns an order's status changes, oldest first, and the
// order's customer (to check who may see it); false if there is no such
// order.
func (s *Store) Timeline(ctx context.Context, id string) ([]TimelineEntry, string, bool, error) {
	var customer string
	err := s.pool.QueryRow(ctx, "SELECT customer_id FROM "+viewSchema+".orders WHERE order_id = $1", id).Scan(&customer)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, "", false, nil
	}
	if err != nil {
		return nil, "", false, fmt.Errorf("order status: timeline of %s: %w", id, err)
	}
	rows, err := s.pool.Query(ctx, `SELECT version, seq, at, event_type, status, detail, commit_id, causation_id, correlation_id, actor
		FROM `+viewSchema+`.order_timeline WHERE order_id = $1 ORDER BY version`, id)
	if err != nil {
		return nil, "", false, fmt.Errorf("order status: timeline of %s: %w", id, err)
	}
	defer rows.Close()
	out := []TimelineEntry{}
	for rows.Next() {
		var t TimelineEntry
		var v, seq int64
		if err := rows.Scan(&v, &seq, &t.At, &t.EventType, &t.Status, &t.Detail, &t.CommitID, &t.CausationID, &t.CorrelationID, &t.Actor); err != nil {
			return nil, "", false, err
		}
		t.Version, t.Seq, t.At = uint64(v), uint64(seq), t.At.UTC()
		out = append(out, t)
	}
	return out, customer, true, rows.Err()
}

// Cursor is a position in a customer's order list, newest first: the
// (created_at, order_id) of the last order of a page.
type Cursor struct {
	CreatedAt time.Time
	OrderID   string
}

// ErrBadCursor means a cursor string was not made by [Cursor.String].
var ErrBadCursor = errors.New("invalid cursor")

// String encodes the cursor as URL-safe text (base64url, no padding).
func (c Cursor) String() string {
	return base64.RawURLEncoding.EncodeToString([]byte("1." + strconv.FormatInt(c.CreatedAt.UnixMicro(), 10) + "." + c.OrderID))
}

// ParseCursor decodes a cursor made by [Cursor.String], and refuses
// anything else: a cursor must name a valid order id and encode back to
// exactly s, so nothing a client forged (a NUL, invalid UTF-8) reaches
// a query.
func ParseCursor(s string) (Cursor, error) {
	c, err := parseCursor(s)
	if err != nil || !events.ValidID(c.OrderID) || c.String() != s {
		return Cursor{}, ErrBadCursor
	}
	return c, nil
}

func parseCursor(s string) (Cursor, error) {
	if len(s) > 400 {
		return Cursor{}, ErrBadCursor
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return Cursor{}, ErrBadCursor
	}
	parts := strings.SplitN(string(b), ".", 3)
	if len(parts) != 3 || parts[0] != "1" || parts[2] == "" || len(parts[2]) > 128 {
		return Cursor{}, ErrBadCursor
	}
	us, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil || us < 0 {
		return Cursor{}, ErrBadCursor
	}
	return Cursor{CreatedAt: time.UnixMicro(us).UTC(), OrderID: parts[2]}, nil
}

// CustomerOrders returns up to limit of a customer's orders, newest
// first, after the cursor (nil: from the newest), only those in status
// if it is not empty, and the cursor of the next page (nil on the last
// page). Lines are not included.
func (s *Store) CustomerOrders(ctx context.Context, customerID, status string, after *Cursor, limit int) ([]Order, *Cursor, error) {
	q := "SELECT " + orderColumns + " FROM " + viewSchema + ".orders WHERE customer_id = $1"
	args := []any{customerID}
	if status != "" {
		args = append(args, status)
		q += " AND status = $" + strconv.Itoa(len(args))
	}
	if after != nil {
		args = append(args, after.CreatedAt, after.OrderID)
		q += fmt.Sprintf(" AND (created_at, order_id) < ($%d, $%d)", len(args)-1, len(args))
	}
	args = append(args, limit+1)
	q += " ORDER BY created_at DESC, order_id DESC LIMIT $" + strconv.Itoa(len(args))
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, nil, fmt.Errorf("order status: orders of %s: %w", customerID, err)
	}
	defer rows.Close()
	out := []Order{}
	for rows.Next() {
		var r orderRow
		if err := rows.Scan(r.scanTargets()...); err != nil {
			return nil, nil, err
		}
		o, err := r.view()
		if err != nil {
			return nil, nil, err
		}
		out = append(out, o)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, err
	}
	if len(out) <= limit {
		return out, nil, nil
	}
	out = out[:limit]
	last := out[limit-1]
	return out, &Cursor{CreatedAt: last.CreatedAt, OrderID: last.OrderID}, nil
}

// Reached reports whether the live read model has applied stream
// sequence seq: for one order (the checkpoint of its partition) when
// orderID is not empty, else for every partition.
func (s *Store) Reached(ctx context.Context, seq uint64, orderID string) (bool, error) {
	var cp int64
	var err error
	if orderID != "" && s.opts.Partition != nil {
		err = s.pool.QueryRow(ctx, "SELECT seq FROM "+viewSchema+".checkpoints WHERE partition = $1", s.opts.Partition(orderID)).Scan(&cp)
	} else {
		err = s.pool.QueryRow(ctx, "SELECT coalesce(min(seq), 0) FROM "+viewSchema+".checkpoints").Scan(&cp)
	}
	if err != nil {
		return false, fmt.Errorf("order status: checkpoint: %w", err)
	}
	return uint64(cp) >= seq, nil
}

// WaitFor waits until [Store.Reached] reports seq applied, polling with a
// short backoff, and returns false if ctx ends first (the caller bounds
// the wait with ctx's deadline).
func (s *Store) WaitFor(ctx context.Context, seq uint64, orderID string) (bool, error) {
	err := pause.Until(ctx, time.Millisecond, 20*time.Millisecond, func() (bool, error) {
		return s.Reached(ctx, seq, orderID)
	})
	switch {
	case err == nil:
		return true, nil
	case ctx.Err() != nil:
		return false, nil
	}
	return false, err
}
