package httpapi

import (
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/ordo-shop/ordo/aggregates/order"
	"github.com/ordo-shop/ordo/events"
	"github.com/ordo-shop/ordo/internal/auth"
	"github.com/ordo-shop/ordo/internal/command"
	"github.com/ordo-shop/ordo/streams"
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
	maxText           = 200
)

func accepted(w http.ResponseWriter, r command.Result[order.State]) {
	writeJSON(w, http.StatusAccepted, orderAccepted{
		OrderID: r.State.ID, Status: string(r.State.Status), Total: r.State.Total,
		Version: r.Version, Position: position(r.Stream, r.Seq),
	})
}

// metadata is the who and why stored with a commit.
func metadata(r *http.Request, c auth.Claims) events.Metadata {
	corr := r.Header.Get("X-Request-Id") // set by dispatch
	tp := r.Header.Get("Traceparent")
	if len(tp) > 128 {
		tp = ""
	}
	return events.Metadata{CorrelationID: corr, Actor: string(c.Role) + ":" + c.Subject, Traceparent: tp}
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
	if len(key) > maxIdempotencyKey || !utf8.ValidString(key) {
		return errorf(http.StatusBadRequest, "invalid_idempotency_key", "the Idempotency-Key must be at most %d bytes of UTF-8", maxIdempotencyKey)
	}
	var req placeRequest
	if err := s.decode(w, r, &req, false); err != nil {
		return err
	}
	if err := validatePlace(req); err != nil {
		return err
	}
	lines := make([]events.OrderLine, 0, len(req.Lines))
	for i, l := range req.Lines {
		if err := checkSKU(l.SKU, i); err != nil {
			return err
		}
		item, err := s.Inventory.State(r.Context(), l.SKU)
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
	res, err := s.Orders.Handle(r.Context(), command.Request[order.Command]{
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
	if err != nil {
		return err
	}
	accepted(w, res)
	return nil
}

func validatePlace(req placeRequest) error {
	missing := func(f string) error {
		return errorf(http.StatusBadRequest, "missing_field", "%s is required", f)
	}
	tooLong := func(f string) error {
		return errorf(http.StatusBadRequest, "invalid_field", "%s is longer than %d characters", f, maxText)
	}
	cu, a := req.Customer, req.ShippingAddress
	switch {
	case strings.TrimSpace(cu.Name) == "":
		return missing("customer.name")
	case cu.Email == "" && cu.Phone == "":
		return missing("customer.email or customer.phone")
	case cu.Email != "" && (!strings.Contains(cu.Email, "@") || len(cu.Email) > 254):
		return errorf(http.StatusBadRequest, "invalid_field", "customer.email %q is not an email address", cu.Email)
	case len(cu.Phone) > 32:
		return tooLong("customer.phone")
	case len(req.Lines) == 0:
		return missing("lines (at least one)")
	case len(req.Lines) > maxLines:
		return errorf(http.StatusBadRequest, "too_many_lines", "at most %d lines per order", maxLines)
	case strings.TrimSpace(a.Name) == "":
		return missing("shipping_address.name")
	case strings.TrimSpace(a.Line1) == "":
		return missing("shipping_address.line1")
	case strings.TrimSpace(a.City) == "":
		return missing("shipping_address.city")
	case len(a.Country) != 2:
		return errorf(http.StatusBadRequest, "invalid_field", "shipping_address.country must be an ISO 3166 two-letter code")
	}
	for _, f := range []struct{ name, v string }{
		{"customer.name", cu.Name}, {"shipping_address.name", a.Name}, {"shipping_address.line1", a.Line1},
		{"shipping_address.line2", a.Line2}, {"shipping_address.city", a.City}, {"shipping_address.region", a.Region},
		{"shipping_address.postal_code", a.PostalCode},
	} {
		if utf8.RuneCountInString(f.v) > maxText {
			return tooLong(f.name)
		}
	}
	for i, l := range req.Lines {
		if l.Qty <= 0 {
			return errorf(http.StatusBadRequest, "invalid_quantity", "lines[%d].qty must be a positive integer", i)
		}
	}
	return nil
}

func checkSKU(sku string, i int) error {
	if sku == "" {
		return errorf(http.StatusBadRequest, "missing_field", "lines[%d].sku is required", i)
	}
	if !streams.ValidID(sku) {
		return errorf(http.StatusBadRequest, "invalid_id", "lines[%d].sku %q is not a valid SKU", i, sku)
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
	res, err := s.Orders.State(r.Context(), id)
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
	accepted(w, res)
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
	if utf8.RuneCountInString(req.Reason) > maxText {
		return errorf(http.StatusBadRequest, "invalid_field", "reason is longer than %d characters", maxText)
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
	if req.Carrier == "" || req.TrackingNumber == "" {
		return errorf(http.StatusBadRequest, "missing_field", "carrier and tracking_number are required")
	}
	if len(req.Carrier) > maxText || len(req.TrackingNumber) > maxText {
		return errorf(http.StatusBadRequest, "invalid_field", "carrier and tracking_number are at most %d characters", maxText)
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
