package httpapi

import (
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/ordo-shop/ordo/aggregates/order"
	"github.com/ordo-shop/ordo/events"
	"github.com/ordo-shop/ordo/internal/auth"
	"github.com/ordo-shop/ordo/internal/command"
)

type placeRequest struct {
	Customer        events.Customer `json:"customer"`
	Lines           []lineRequest   `json:"lines"`
	ShippingAddress events.Address  `json:"shipping_address"`
}

// lineRequest is what a client may say about a line. Prices are never
// taken from the client: any price field in the body is ignored and the
// catalog's price is used.
type lineRequest struct {
	SKU string `json:"sku"`
	Qty int64  `json:"qty"`
}

type orderAccepted struct {
	OrderID  string       `json:"order_id"`
	Status   string       `json:"status"`
	Total    events.Money `json:"total"`
	Version  uint64       `json:"version"`
	Position string       `json:"position"`
}

type cancelRequest struct {
	Reason string `json:"reason"`
}

type shipRequest struct {
	Carrier        string `json:"carrier"`
	TrackingNumber string `json:"tracking_number"`
}

type deliverRequest struct{}

const (
	maxIdempotencyKey = 255
	maxLines          = 100
)

func accepted(w http.ResponseWriter, r command.Result[order.State]) {
	writeOrder(w, http.StatusAccepted, r)
}

// outcome answers a cancel, ship or deliver: 202 when this request
// appended the commit that brought the order there, 200 with the same
// body when the order already was so and nothing was appended (a repeat,
// with the same Idempotency-Key or without one; decision 025).
func outcome(w http.ResponseWriter, r command.Result[order.State]) {
	status := http.StatusAccepted
	if len(r.Events) == 0 {
		status = http.StatusOK
	}
	writeOrder(w, status, r)
}

func writeOrder(w http.ResponseWriter, status int, r command.Result[order.State]) {
	writeJSON(w, status, orderAccepted{
		OrderID: r.State.ID, Status: string(r.State.Status), Total: r.State.Total,
		Version: r.Version, Position: position(r.Stream, r.Seq),
	})
}

// metadata is the who and why stored with a commit. The X-Request-Id
// and Traceparent headers were made valid by dispatch (requestContext).
func metadata(r *http.Request, c auth.Claims) events.Metadata {
	return events.Metadata{CorrelationID: r.Header.Get("X-Request-Id"), Actor: string(c.Role) + ":" + c.Subject, Traceparent: r.Header.Get("Traceparent")}
}

// orderID derives the order id from the customer and the idempotency key,
// so a retry however late finds the order it created.
func orderID(customer, key string) string {
	sum := sha256.Sum256([]byte("ordo.order\x00" + customer + "\x00" + key))
	return "ord_" + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(sum[:16]))
}

// requestHash fingerprints what the client asked for, to tell a retry from
// a reused key.
func requestHash(req placeRequest) string {
	b, _ := json.Marshal(req)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func (s *Server) placeOrder(w http.ResponseWriter, r *http.Request, c auth.Claims) error {
	key := r.Header.Get("Idempotency-Key")
	if key == "" {
		return errorf(http.StatusBadRequest, "idempotency_key_required", "the Idempotency-Key header is required")
	}
	if err := events.CheckText("Idempotency-Key", key, events.KeyText); err != nil {
		return fieldErrorf("invalid_idempotency_key", "Idempotency-Key", "the %v", err)
	}
	if len(key) > maxIdempotencyKey {
		return fieldErrorf("invalid_idempotency_key", "Idempotency-Key", "the Idempotency-Key must be at most %d bytes of UTF-8", maxIdempotencyKey)
	}
	var req placeRequest
	if err := s.decode(w, r, &req, false); err != nil {
		return err
	}
	if err := validatePlace(req); err != nil {
		return err
	}
	if err := s.checkAdmission(r.Context()); err != nil {
		return err
	}
	lines := make([]events.OrderLine, 0, len(req.Lines))
	for i, l := range req.Lines {
		if err := checkSKU(l.SKU, i); err != nil {
			return err
		}
		item, err := s.Inventory.State(r.Context(), l.SKU, command.Cached)
		if err != nil {
			return err
		}
		if !item.State.Exists {
			return errorf(http.StatusUnprocessableEntity, "unknown_sku", "lines[%d]: no SKU %q in the catalog", i, l.SKU)
		}
		lines = append(lines, events.OrderLine{SKU: l.SKU, Qty: l.Qty, UnitPrice: item.State.Price})
	}
	id := orderID(c.Subject, key)
	hash := requestHash(req)
	place := func() (command.Result[order.State], error) {
		return s.Orders.Handle(r.Context(), command.Request[order.Command]{
			AggregateID: id,
			// The same key with the same body is the same command; with
			// another body it is another command, which the order refuses.
			CommandID: "place-" + id + "-" + hash[:16],
			AssumeNew: true,
			Command: order.Place{
				OrderID: id, CustomerID: c.Subject, Customer: req.Customer, Lines: lines,
				ShippingAddress: req.ShippingAddress, IdempotencyKey: key, RequestHash: hash,
			},
			Metadata: metadata(r, c),
		})
	}
	var res command.Result[order.State]
	var err error
	if s.unpaid == nil {
		res, err = place()
	} else {
		// The customer's places on this instance take turns from here
		// to the append, so the count they check is the count they leave.
		sl := s.unpaid.acquire(c.Subject)
		defer s.unpaid.release(c.Subject, sl)
		if err := s.unpaid.admit(r.Context(), s.Orders, sl, id); err != nil {
			return err
		}
		if res, err = place(); err == nil {
			s.unpaid.placed(sl, id, res.State.Status)
		}
	}
	if err != nil {
		return err
	}
	accepted(w, res)
	return nil
}

// validatePlace checks what the client sent for an order: the fields
// it must send, and every text against its rule (the order decider checks
// the texts again).
func validatePlace(req placeRequest) error {
	missing := func(f string) error {
		return fieldErrorf("missing_field", f, "%s is required", f)
	}
	cu, a := req.Customer, req.ShippingAddress
	switch {
	case strings.TrimSpace(cu.Name) == "":
		return missing("customer.name")
	case cu.Email == "" && cu.Phone == "":
		return fieldErrorf("missing_field", "customer.email", "customer.email or customer.phone is required")
	case len(req.Lines) == 0:
		return fieldErrorf("missing_field", "lines", "lines (at least one) is required")
	case len(req.Lines) > maxLines:
		return fieldErrorf("too_many_lines", "lines", "at most %d lines per order", maxLines)
	case strings.TrimSpace(a.Name) == "":
		return missing("shipping_address.name")
	case strings.TrimSpace(a.Line1) == "":
		return missing("shipping_address.line1")
	case strings.TrimSpace(a.City) == "":
		return missing("shipping_address.city")
	case a.Country == "":
		return missing("shipping_address.country")
	}
	if err := cu.CheckText("customer"); err != nil {
		return textFieldError(err)
	}
	if cu.Email != "" && !strings.Contains(cu.Email, "@") {
		return fieldErrorf("invalid_field", "customer.email", "customer.email %q is not an email address", cu.Email)
	}
	if err := a.CheckText("shipping_address"); err != nil {
		return textFieldError(err)
	}
	for i, l := range req.Lines {
		if l.Qty <= 0 {
			return fieldErrorf("invalid_quantity", fmt.Sprintf("lines[%d].qty", i), "lines[%d].qty must be a positive integer", i)
		}
	}
	return nil
}

func checkSKU(sku string, i int) error {
	field := fmt.Sprintf("lines[%d].sku", i)
	if sku == "" {
		return fieldErrorf("missing_field", field, "%s is required", field)
	}
	if !events.ValidID(sku) {
		return fieldErrorf("invalid_id", field, "%s %q is not a valid SKU", field, truncateText(sku))
	}
	return nil
}

// loadOwned returns the order if the caller may act on it; a customer
// asking about another customer's order is told it does not exist.
func (s *Server) loadOwned(r *http.Request, c auth.Claims) (string, error) {
	id, err := pathID(r, "id")
	if err != nil {
		return "", err
	}
	res, err := s.Orders.State(r.Context(), id, command.Cached)
	if err != nil {
		return "", err
	}
	if !res.State.Exists || (c.Role == auth.RoleCustomer && res.State.CustomerID != c.Subject) {
		return "", errorf(http.StatusNotFound, "order_not_found", "no order %q", id)
	}
	return id, nil
}

func (s *Server) orderCommand(w http.ResponseWriter, r *http.Request, c auth.Claims, id string, cmd order.Command) error {
	req := command.Request[order.Command]{AggregateID: id, Command: cmd, Metadata: metadata(r, c)}
	if key := r.Header.Get("Idempotency-Key"); key != "" {
		sum := sha256.Sum256([]byte(id + "\x00" + c.Subject + "\x00" + key))
		req.CommandID = "cmd-" + hex.EncodeToString(sum[:16])
	}
	res, err := s.Orders.Handle(r.Context(), req)
	if err != nil {
		return err
	}
	outcome(w, res)
	return nil
}

func (s *Server) cancelOrder(w http.ResponseWriter, r *http.Request, c auth.Claims) error {
	id, err := s.loadOwned(r, c)
	if err != nil {
		return err
	}
	var req cancelRequest
	if err := s.decode(w, r, &req, true); err != nil {
		return err
	}
	if err := checkText("reason", req.Reason, events.NoteText); err != nil {
		return err
	}
	return s.orderCommand(w, r, c, id, order.Cancel{Reason: req.Reason, By: string(c.Role)})
}

func (s *Server) shipOrder(w http.ResponseWriter, r *http.Request, c auth.Claims) error {
	id, err := s.loadOwned(r, c)
	if err != nil {
		return err
	}
	var req shipRequest
	if err := s.decode(w, r, &req, false); err != nil {
		return err
	}
	switch {
	case req.Carrier == "":
		return fieldErrorf("missing_field", "carrier", "carrier and tracking_number are required")
	case req.TrackingNumber == "":
		return fieldErrorf("missing_field", "tracking_number", "carrier and tracking_number are required")
	}
	if err := checkText("carrier", req.Carrier, events.LineText); err != nil {
		return err
	}
	if err := checkText("tracking_number", req.TrackingNumber, events.LineText); err != nil {
		return err
	}
	return s.orderCommand(w, r, c, id, order.Ship{Carrier: req.Carrier, TrackingNumber: req.TrackingNumber})
}

func (s *Server) deliverOrder(w http.ResponseWriter, r *http.Request, c auth.Claims) error {
	id, err := s.loadOwned(r, c)
	if err != nil {
		return err
	}
	var req deliverRequest
	if err := s.decode(w, r, &req, true); err != nil {
		return err
	}
	return s.orderCommand(w, r, c, id, order.Deliver{})
}
