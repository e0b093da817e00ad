package search

import (
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/ordo-shop/ordo/events"
	"github.com/ordo-shop/ordo/projections/orderlog"
)

// Document is one order in the index: what the search box matches, what
// a hit shows, and the fold state that later events continue.
type Document struct {
	DocType    string          `json:"doc_type"` // "order"
	OrderID    string          `json:"order_id"`
	CustomerID string          `json:"customer_id"`
	Customer   events.Customer `json:"customer"` // as given, for display
	// Name is the customer's and the recipient's name, for full-text
	// and prefix search.
	Name string `json:"name"`
	// Email is the customer's email, lower-cased and trimmed.
	Email string `json:"email"`
	// PhoneDigits is the phone number's digits only; PhoneTails are its
	// suffixes of 4 digits and more (the last four, the national number
	// without a country code, ...), so any of them is one term lookup.
	PhoneDigits    string    `json:"phone_digits,omitempty"`
	PhoneTails     []string  `json:"phone_tails,omitempty"`
	SKUs           []string  `json:"skus"`
	Status         string    `json:"status"`
	StatusReason   string    `json:"status_reason,omitempty"`
	PaymentStatus  string    `json:"payment_status"`
	PaymentID      string    `json:"payment_id,omitempty"`
	Carrier        string    `json:"carrier,omitempty"`
	TrackingNumber string    `json:"tracking_number,omitempty"`
	TotalAmount    int64     `json:"total_amount"`
	Currency       string    `json:"currency"`
	City           string    `json:"city,omitempty"`
	CreatedAt      time.Time `json:"created_at"`
	UpdatedAt      time.Time `json:"updated_at"`
	// Version is the order's last applied event version; Seq the stream
	// sequence of its last applied commit, which is also the document's
	// external version in Elasticsearch.
	Version uint64 `json:"version"`
	Seq     uint64 `json:"seq"`
	// Deleted marks a soft-deleted order: kept in the index (so a replay
	// of older commits cannot bring it back: its version stays), never
	// found by search.
	Deleted bool `json:"deleted"`
}

// docTypeOrder and docTypeCheckpoint tell orders from the projection's
// checkpoints, which live in the same index (so an alias swap moves both
// at once).
const (
	docTypeOrder      = "order"
	docTypeCheckpoint = "checkpoint"
)

// NormalizeEmail returns an email as the index stores it: trimmed and
// lower-cased.
func NormalizeEmail(s string) string {
	return strings.ToLower(strings.TrimSpace(s))
}

// PhoneDigits returns the ASCII digits of a phone number (full-width
// digits count too), dropping everything else.
func PhoneDigits(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r >= '0' && r <= '9':
			b.WriteRune(r)
		case r >= '０' && r <= '９':
			b.WriteRune('0' + (r - '０'))
		}
	}
	return b.String()
}

// phoneTails returns the suffixes of digits of 4 digits or more.
func phoneTails(digits string) []string {
	if len(digits) < 4 {
		return nil
	}
	out := make([]string, 0, len(digits)-3)
	for i := 0; i+4 <= len(digits); i++ {
		out = append(out, digits[i:])
	}
	return out
}

// looksLikePhone reports whether a search text is a phone number or part
// of one: digits with at most spaces, dashes, dots, parentheses and a
// leading plus.
func looksLikePhone(s string) bool {
	digits := 0
	for _, r := range s {
		switch {
		case r >= '0' && r <= '9', r >= '０' && r <= '９':
			digits++
		case r == ' ', r == '-', r == '.', r == '(', r == ')', r == '+', r == '/':
		default:
			return false
		}
	}
	return digits >= 4
}

// errOutOfStep means a commit does not follow the document's version: the
// document must be rebuilt from the order's history.
var errOutOfStep = errors.New("search: document out of step with the log")

// newDocument starts a document from an order.placed event.
func newDocument(e events.OrderPlaced, at time.Time) *Document {
	d := &Document{
		DocType: docTypeOrder, OrderID: e.OrderID, CustomerID: e.CustomerID, Customer: e.Customer,
		Email: NormalizeEmail(e.Customer.Email), Status: "placed", PaymentStatus: "none",
		TotalAmount: e.Total.Amount, Currency: e.Total.Currency, City: e.ShippingAddress.City,
		CreatedAt: at, UpdatedAt: at,
	}
	d.Name = strings.TrimSpace(e.Customer.Name)
	if rn := strings.TrimSpace(e.ShippingAddress.Name); rn != "" && rn != d.Name {
		d.Name += " " + rn
	}
	d.PhoneDigits = PhoneDigits(e.Customer.Phone)
	d.PhoneTails = phoneTails(d.PhoneDigits)
	seen := map[string]bool{}
	d.SKUs = []string{}
	for _, l := range e.Lines {
		if !seen[l.SKU] {
			seen[l.SKU] = true
			d.SKUs = append(d.SKUs, l.SKU)
		}
	}
	return d
}

// apply folds one commit into doc (nil for an order not seen yet) and
// returns the document. A commit at or below the document's sequence is
// already in it and changes nothing.
func apply(doc *Document, c *orderlog.Commit) (*Document, error) {
	if doc != nil && doc.Seq >= c.Seq {
		return doc, nil
	}
	var have uint64
	if doc != nil {
		have = doc.Version
	}
	if c.Version != have+1 {
		return doc, fmt.Errorf("%w: order %s commit v%d (seq %d) follows v%d", errOutOfStep, c.AggregateID, c.Version, c.Seq, have)
	}
	for i, ev := range c.Events {
		if doc == nil {
			placed, ok := ev.Payload.(events.OrderPlaced)
			if !ok {
				return nil, fmt.Errorf("search: seq %d: order %s starts with %s, not order.placed", c.Seq, c.AggregateID, ev.Type)
			}
			doc = newDocument(placed, c.RecordedAt)
		}
		evolve(doc, ev.Payload)
		doc.Version = c.Version + uint64(i)
	}
	doc.UpdatedAt = c.RecordedAt
	doc.Seq = c.Seq
	return doc, nil
}

// evolve applies one event's effect on the searchable state. Unknown
// events (nil) change nothing.
func evolve(d *Document, p events.Payload) {
	switch e := p.(type) {
	case events.OrderStockReserved:
		d.Status = "stock_reserved"
	case events.OrderPaymentRequested:
		d.Status, d.PaymentStatus, d.PaymentID = "payment_pending", "pending", e.PaymentID
	case events.OrderPaid:
		d.Status, d.PaymentStatus, d.PaymentID = "paid", "captured", e.PaymentID
	case events.OrderShipped:
		d.Status, d.Carrier, d.TrackingNumber = "shipped", e.Carrier, e.TrackingNumber
	case events.OrderDelivered:
		d.Status = "delivered"
	case events.OrderRejected:
		d.Status, d.StatusReason = "rejected", e.Reason
	case events.OrderCancelled:
		d.Status, d.StatusReason = "cancelled", e.Reason
		if d.PaymentStatus == "pending" {
			d.PaymentStatus = "abandoned"
		}
	case events.OrderRefunded:
		d.Status, d.PaymentStatus = "refunded", "refunded"
	case events.OrderAttentionRequired:
		if e.Reason == events.AttentionRefundedAfterShipment {
			d.PaymentStatus = "refunded"
		}
	}
}

// MaxQueryRunes caps the search text.
const MaxQueryRunes = 200

// cleanText trims a search text and reports whether it is acceptable:
// valid UTF-8 without control characters and at most [MaxQueryRunes].
func cleanText(s string) (string, error) {
	if !utf8.ValidString(s) {
		return "", fmt.Errorf("%w: q is not valid UTF-8", ErrBadQuery)
	}
	s = strings.TrimSpace(s)
	if n := utf8.RuneCountInString(s); n > MaxQueryRunes {
		return "", fmt.Errorf("%w: q is %d characters long; at most %d are allowed", ErrBadQuery, n, MaxQueryRunes)
	}
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s), nil
}
