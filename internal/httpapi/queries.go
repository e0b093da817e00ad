package httpapi

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/ordo-shop/ordo/aggregates/order"
	"github.com/ordo-shop/ordo/eventlog"
	"github.com/ordo-shop/ordo/events"
	"github.com/ordo-shop/ordo/internal/auth"
	"github.com/ordo-shop/ordo/projections"
	"github.com/ordo-shop/ordo/projections/postgres"
	"github.com/ordo-shop/ordo/projections/search"
)

// Queries is the read side the query routes serve; *postgres.Store
// (projections/postgres) implements it.
type Queries interface {
	Order(ctx context.Context, id string) (postgres.Order, bool, error)
	Timeline(ctx context.Context, id string) ([]postgres.TimelineEntry, string, bool, error)
	CustomerOrders(ctx context.Context, customerID, status string, after *postgres.Cursor, limit int) ([]postgres.Order, *postgres.Cursor, error)
	// WaitFor waits until the read model has applied a stream sequence
	// (for one order's partition, or all partitions when orderID is
	// empty) and reports false if ctx ends first.
	WaitFor(ctx context.Context, seq uint64, orderID string) (bool, error)
	Status(ctx context.Context, streamLast uint64) (postgres.Status, error)
	// Quarantined lists the commits the projector set aside.
	Quarantined(ctx context.Context) ([]postgres.QuarantineEntry, error)
}

// LogPosition reports the end of a stream: for projection lag and to
// tell a position from the future from a projection that is behind.
// *streams.Store implements it.
type LogPosition interface {
	LastSeq(ctx context.Context, aggType string) (uint64, error)
}

// DefaultReadYourWritesWait bounds how long a query with ?position=
// waits for the read model.
const DefaultReadYourWritesWait = 2 * time.Second

// Paging limits of GET /v1/customers/{id}/orders.
const (
	defaultListLimit = 20
	maxListLimit     = 100
)

// ordersStream is the stream order positions name ("ORDERS:123").
const ordersStream = "ORDERS"

type orderView struct {
	OrderID         string             `json:"order_id"`
	CustomerID      string             `json:"customer_id"`
	Status          string             `json:"status"`
	StatusReason    string             `json:"status_reason,omitempty"`
	Customer        events.Customer    `json:"customer"`
	ShippingAddress events.Address     `json:"shipping_address"`
	Lines           []events.OrderLine `json:"lines"`
	Total           events.Money       `json:"total"`
	Payment         paymentView        `json:"payment"`
	Shipment        *shipmentView      `json:"shipment,omitempty"`
	CreatedAt       time.Time          `json:"created_at"`
	UpdatedAt       time.Time          `json:"updated_at"`
	Version         uint64             `json:"version"`
	Position        string             `json:"position"`
	// Degraded is set when some of the order's commits could not be
	// applied to the read model: the view may miss what they did.
	Degraded *degradedView `json:"degraded,omitempty"`
}

// degradedView tells a client that an order's view is incomplete.
type degradedView struct {
	Reason   string    `json:"reason"`
	Position string    `json:"position"` // of the first commit set aside
	Since    time.Time `json:"since"`
}

type paymentView struct {
	Status      string `json:"status"`
	PaymentID   string `json:"payment_id,omitempty"`
	CheckoutURL string `json:"checkout_url,omitempty"`
}

type shipmentView struct {
	Carrier        string `json:"carrier"`
	TrackingNumber string `json:"tracking_number"`
}

type orderSummary struct {
	OrderID    string       `json:"order_id"`
	CustomerID string       `json:"customer_id"`
	Status     string       `json:"status"`
	Total      events.Money `json:"total"`
	Payment    paymentView  `json:"payment"`
	CreatedAt  time.Time    `json:"created_at"`
	UpdatedAt  time.Time    `json:"updated_at"`
	Version    uint64       `json:"version"`
}

type orderList struct {
	Orders     []orderSummary `json:"orders"`
	NextCursor string         `json:"next_cursor,omitempty"`
}

type timelineView struct {
	OrderID string          `json:"order_id"`
	Entries []timelineEntry `json:"entries"`
}

type timelineEntry struct {
	At            time.Time `json:"at"`
	Status        string    `json:"status"`
	Event         string    `json:"event"`
	Detail        string    `json:"detail,omitempty"`
	Version       uint64    `json:"version"`
	Position      string    `json:"position"`
	CommitID      string    `json:"commit_id"`
	CausationID   string    `json:"causation_id,omitempty"`
	CorrelationID string    `json:"correlation_id,omitempty"`
	Actor         string    `json:"actor,omitempty"`
}

type projectionList struct {
	Projections []projections.View `json:"projections"`
}

var errNoQueries = errorf(http.StatusServiceUnavailable, "queries_unavailable", "this instance serves no queries (no read model configured)")

// readFailed maps an error of the read model: an outage of PostgreSQL
// (see [Deps.Outage]) is 503 queries_unavailable, logged; anything else
// goes on to [Server.classify] (a fault in a query is 500 internal).
func (s *Server) readFailed(r *http.Request, err error) error {
	if known(err) != nil || s.Outage == nil || !s.Outage(err) {
		return err
	}
	s.log.ErrorContext(r.Context(), "read model query failed", slog.String("path", r.URL.Path), slog.Any("err", err))
	return errorf(http.StatusServiceUnavailable, "queries_unavailable", "the read model is unavailable; retry later")
}

// parsePosition reads a position the command API returned, such as
// "ORDERS:123".
func parsePosition(p string) (uint64, error) {
	stream, num, ok := strings.Cut(p, ":")
	seq, err := strconv.ParseUint(num, 10, 64)
	if !ok || stream != ordersStream || err != nil || seq == 0 || num[0] == '+' {
		return 0, errorf(http.StatusBadRequest, "invalid_position", "position %q is not an order position returned by the command API (such as %q)", truncateText(p), ordersStream+":42")
	}
	return seq, nil
}

func truncateText(s string) string {
	if len(s) > 60 {
		return s[:60] + "..."
	}
	return s
}

// awaitPosition implements ?position=: it waits, bounded, until the read
// model has applied the position (for orderID's partition, or every
// partition), and otherwise refuses to answer from a stale read model.
func (s *Server) awaitPosition(r *http.Request, orderID string) error {
	return s.awaitRead(r, "the read model",
		func(ctx context.Context, seq uint64) (bool, error) { return s.Queries.WaitFor(ctx, seq, orderID) }, s.readFailed)
}

// awaitRead implements ?position= for a read side (what names it in the
// answer): it waits, bounded by ReadYourWritesWait, until wait reports
// the position applied, and otherwise refuses to answer from a stale
// read side. failed turns wait's errors into answers.
func (s *Server) awaitRead(r *http.Request, what string, wait func(ctx context.Context, seq uint64) (bool, error), failed func(*http.Request, error) error) error {
	pos := r.URL.Query().Get("position")
	if pos == "" {
		return nil
	}
	seq, err := parsePosition(pos)
	if err != nil {
		return err
	}
	// A position the log has not reached was not returned by the command
	// API: waiting for it could only end in a timeout.
	if s.Log != nil {
		if last, err := s.Log.LastSeq(r.Context(), eventlog.TypeOrder); err == nil && seq > last {
			return errorf(http.StatusBadRequest, "invalid_position", "position %s is beyond the end of the log (%s)", pos, position(ordersStream, last))
		}
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.ReadYourWritesWait)
	defer cancel()
	ok, err := wait(ctx, seq)
	if err != nil {
		return failed(r, err)
	}
	if ok {
		return nil
	}
	if r.Context().Err() != nil {
		return r.Context().Err()
	}
	return errorf(http.StatusServiceUnavailable, "projection_behind", "%s has not reached position %s yet; retry shortly", what, pos)
}

func (s *Server) getOrder(w http.ResponseWriter, r *http.Request, c auth.Claims) error {
	if s.Queries == nil {
		return errNoQueries
	}
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	if err := s.awaitPosition(r, id); err != nil {
		return err
	}
	o, ok, err := s.Queries.Order(r.Context(), id)
	if errors.Is(err, postgres.ErrOrderDegraded) {
		s.log.ErrorContext(r.Context(), "order held back by a quarantined commit", slog.String("order_id", id), slog.Any("err", err))
		return errorf(http.StatusServiceUnavailable, "order_degraded", "order %q cannot be shown: its history could not be applied to the read model; an operator has been alerted (orderctl projections status)", id)
	}
	if err != nil {
		return s.readFailed(r, err)
	}
	if !ok || (c.Role == auth.RoleCustomer && o.CustomerID != c.Subject) {
		return errorf(http.StatusNotFound, "order_not_found", "no order %q", id)
	}
	v := orderView{
		OrderID: o.OrderID, CustomerID: o.CustomerID, Status: o.Status, StatusReason: o.StatusReason,
		Customer: o.Customer, ShippingAddress: o.ShippingAddress, Lines: make([]events.OrderLine, 0, len(o.Lines)),
		Total: o.Total, Payment: viewPayment(o.Payment), CreatedAt: o.CreatedAt, UpdatedAt: o.UpdatedAt,
		Version: o.Version, Position: position(ordersStream, o.LastSeq),
	}
	for _, l := range o.Lines {
		v.Lines = append(v.Lines, events.OrderLine{SKU: l.SKU, Qty: l.Qty, UnitPrice: l.UnitPrice, Amount: l.Amount})
	}
	if o.Shipment.Carrier != "" {
		v.Shipment = &shipmentView{Carrier: o.Shipment.Carrier, TrackingNumber: o.Shipment.TrackingNumber}
	}
	if d := o.Degraded; d != nil {
		v.Degraded = &degradedView{
			Reason:   "some of this order's history could not be applied to the read model; what is shown may be out of date",
			Position: position(ordersStream, d.Seq), Since: d.Since,
		}
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

func viewPayment(p postgres.Payment) paymentView {
	return paymentView{Status: p.Status, PaymentID: p.PaymentID, CheckoutURL: p.CheckoutURL}
}

func (s *Server) getTimeline(w http.ResponseWriter, r *http.Request, c auth.Claims) error {
	if s.Queries == nil {
		return errNoQueries
	}
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	if err := s.awaitPosition(r, id); err != nil {
		return err
	}
	entries, customer, ok, err := s.Queries.Timeline(r.Context(), id)
	if err != nil {
		return s.readFailed(r, err)
	}
	if !ok || (c.Role == auth.RoleCustomer && customer != c.Subject) {
		return errorf(http.StatusNotFound, "order_not_found", "no order %q", id)
	}
	out := timelineView{OrderID: id, Entries: make([]timelineEntry, 0, len(entries))}
	for _, e := range entries {
		out.Entries = append(out.Entries, timelineEntry{
			At: e.At, Status: e.Status, Event: e.EventType, Detail: e.Detail, Version: e.Version,
			Position: position(ordersStream, e.Seq), CommitID: e.CommitID, CausationID: e.CausationID,
			CorrelationID: e.CorrelationID, Actor: e.Actor,
		})
		if c.Role == auth.RoleCustomer {
			customerView(&out.Entries[len(out.Entries)-1], c.Subject)
		}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// staffActor is what a customer sees as the actor of what staff did.
const staffActor = "customer service"

// customerView shows a timeline entry as its customer sees it: their own
// actor and Ordo's processes ("sagas:...", "psp:...") as they are, any
// other actor (an agent or admin, "agent:agent-7") as [staffActor],
// without the correlation id that staff's request chose.
func customerView(e *timelineEntry, subject string) {
	if e.Actor == "" || e.Actor == string(auth.RoleCustomer)+":"+subject {
		return
	}
	if kind, _, _ := strings.Cut(e.Actor, ":"); kind == "sagas" || kind == "psp" {
		return
	}
	e.Actor, e.CorrelationID = staffActor, ""
}

// isOrderStatus reports whether ?status= names an order status.
func isOrderStatus(s string) bool {
	switch order.Status(s) {
	case order.StatusPlaced, order.StatusStockReserved, order.StatusPaymentPending, order.StatusPaid,
		order.StatusShipped, order.StatusDelivered, order.StatusRejected, order.StatusCancelled, order.StatusRefunded:
		return true
	}
	return false
}

func (s *Server) listCustomerOrders(w http.ResponseWriter, r *http.Request, c auth.Claims) error {
	if s.Queries == nil {
		return errNoQueries
	}
	customer, err := pathID(r, "id")
	if err != nil {
		return err
	}
	if c.Role == auth.RoleCustomer && customer != c.Subject {
		return errorf(http.StatusForbidden, "forbidden", "customers may list only their own orders")
	}
	q := r.URL.Query()
	limit := defaultListLimit
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxListLimit {
			return errorf(http.StatusBadRequest, "invalid_limit", "limit must be an integer from 1 to %d", maxListLimit)
		}
		limit = n
	}
	status := q.Get("status")
	if status != "" && !isOrderStatus(status) {
		return errorf(http.StatusBadRequest, "invalid_status", "status %q is not an order status", truncateText(status))
	}
	var after *postgres.Cursor
	if v := q.Get("cursor"); v != "" {
		cur, err := parseListCursor(v)
		if err != nil {
			return err
		}
		after = &cur
	}
	if err := s.awaitPosition(r, ""); err != nil {
		return err
	}
	orders, next, err := s.Queries.CustomerOrders(r.Context(), customer, status, after, limit)
	if err != nil {
		return s.readFailed(r, err)
	}
	out := orderList{Orders: make([]orderSummary, 0, len(orders))}
	for _, o := range orders {
		out.Orders = append(out.Orders, orderSummary{
			OrderID: o.OrderID, CustomerID: o.CustomerID, Status: o.Status, Total: o.Total,
			Payment: viewPayment(o.Payment), CreatedAt: o.CreatedAt, UpdatedAt: o.UpdatedAt, Version: o.Version,
		})
	}
	if next != nil {
		out.NextCursor = next.String()
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// parseListCursor reads a cursor of GET /v1/customers/{id}/orders and
// accepts only what [postgres.Cursor.String] makes: it must decode, name
// a valid order id, and encode back to the same text. So nothing but a
// cursor the API issued reaches PostgreSQL (a NUL or invalid UTF-8 hidden
// in a forged one would make it fail, and the client get a 503).
func parseListCursor(v string) (postgres.Cursor, error) {
	cur, err := postgres.ParseCursor(v)
	if err != nil {
		return postgres.Cursor{}, fieldErrorf("invalid_cursor", "cursor", "cursor is not one this API returned")
	}
	return cur, nil
}

func (s *Server) listProjections(w http.ResponseWriter, r *http.Request, _ auth.Claims) error {
	if s.Queries == nil {
		return errNoQueries
	}
	var last uint64
	if s.Log != nil {
		var err error
		if last, err = s.Log.LastSeq(r.Context(), eventlog.TypeOrder); err != nil {
			return err
		}
	}
	st, err := s.Queries.Status(r.Context(), last)
	if err != nil {
		return s.readFailed(r, err)
	}
	list := projectionList{Projections: []projections.View{st.View()}}
	if ss, ok := s.Search.(SearchStatus); ok {
		list.Projections = append(list.Projections, searchProjectionView(r.Context(), ss, last))
	}
	writeJSON(w, http.StatusOK, list)
	return nil
}

// SearchStatus is implemented by a [Search] that can report its
// projection's checkpoints; GET /v1/projections then lists it too.
type SearchStatus interface {
	Status(ctx context.Context, streamLast uint64) (search.Status, error)
	// Quarantined lists the commits the search projector set aside.
	Quarantined(ctx context.Context) ([]projections.QuarantineView, error)
}

// searchProjectionView describes the search projection; with
// Elasticsearch unreachable its state is "unavailable" and the rest of
// the listing is still served.
func searchProjectionView(ctx context.Context, ss SearchStatus, last uint64) projections.View {
	st, err := ss.Status(ctx, last)
	if err != nil {
		return search.UnavailableView(last, err)
	}
	return st.View(last)
}
