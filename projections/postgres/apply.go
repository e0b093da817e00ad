package postgres

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/ordo-shop/ordo/eventlog"
	"github.com/ordo-shop/ordo/events"
	"github.com/ordo-shop/ordo/projections/orderlog"
)

// Payment states of the read model, as far as the order's own events
// tell.
const (
	PaymentNone      = "none"
	PaymentPending   = "pending"
	PaymentCaptured  = "captured"
	PaymentRefunded  = "refunded"
	PaymentAbandoned = "abandoned" // the order was cancelled while the payment was pending
)

// orderRow is one row of orders.
type orderRow struct {
	OrderID         string
	CustomerID      string
	Customer        string // JSON
	ShippingAddress string // JSON
	Status          string
	TotalAmount     int64
	Currency        string
	PaymentStatus   string
	PaymentID       string
	CheckoutURL     string
	Carrier         string
	TrackingNumber  string
	StatusReason    string
	CreatedAt       time.Time
	UpdatedAt       time.Time
	Version         int64
	LastSeq         int64
}

const orderColumns = "order_id, customer_id, customer, shipping_address, status, total_amount, currency, payment_status, payment_id, checkout_url, carrier, tracking_number, status_reason, created_at, updated_at, version, last_seq"

func (r *orderRow) scanTargets() []any {
	return []any{&r.OrderID, &r.CustomerID, &r.Customer, &r.ShippingAddress, &r.Status, &r.TotalAmount, &r.Currency,
		&r.PaymentStatus, &r.PaymentID, &r.CheckoutURL, &r.Carrier, &r.TrackingNumber, &r.StatusReason,
		&r.CreatedAt, &r.UpdatedAt, &r.Version, &r.LastSeq}
}

type lineRow struct {
	OrderID   string
	LineNo    int32
	SKU       string
	Qty       int64
	UnitPrice int64
	Amount    int64
}

type timelineRow struct {
	OrderID       string
	Version       int64
	Seq           int64
	At            time.Time
	EventType     string
	Status        string
	Detail        string
	CommitID      string
	CausationID   string
	CorrelationID string
	Actor         string
}

// change is what one batch writes.
type change struct {
	orders   []*orderRow
	lines    []lineRow
	timeline []timelineRow
}

// orderIDs returns the orders recs continue that known does not hold:
// those to read from the database before folding. An order whose first
// commit in the batch is its first ever is new and not read (were it
// stored already, its timeline's primary key would refuse the batch).
func orderIDs(recs []*orderlog.Commit, known map[string]*orderRow) []string {
	var ids []string
	seen := make(map[string]struct{}, len(recs))
	for _, c := range recs {
		if _, dup := seen[c.AggregateID]; dup {
			continue
		}
		seen[c.AggregateID] = struct{}{}
		if c.Version > 1 && known[c.AggregateID] == nil {
			ids = append(ids, c.AggregateID)
		}
	}
	return ids
}

func selectOrders(schema string) string {
	return "SELECT " + orderColumns + " FROM " + schema + ".orders WHERE order_id = ANY($1)"
}

// scanOrderRows adds the rows to out.
func scanOrderRows(rows pgx.Rows, out map[string]*orderRow) error {
	defer rows.Close()
	for rows.Next() {
		r := &orderRow{}
		if err := rows.Scan(r.scanTargets()...); err != nil {
			return err
		}
		out[r.OrderID] = r
	}
	return rows.Err()
}

// decodeAll decodes a batch of records with the registry (the slow
// path; [orderlog.Decoder.Decode] is the fast one).
func decodeAll(dec *orderlog.Decoder, recs []eventlog.Record) ([]*orderlog.Commit, error) {
	out := make([]*orderlog.Commit, len(recs))
	for i, rec := range recs {
		c, err := dec.FromRecord(rec)
		if err != nil {
			return nil, err
		}
		out[i] = c
	}
	return out, nil
}

// fold applies a batch of commits, in log order, to the rows they touch
// (existing holds those already stored) and returns the rows to write.
// It checks that each order's versions follow on without gap or repeat.
func fold(recs []*orderlog.Commit, existing map[string]*orderRow) (*change, error) {
	nev := 0
	for _, c := range recs {
		nev += len(c.Events)
	}
	ch := &change{orders: make([]*orderRow, 0, len(recs)), lines: make([]lineRow, 0, len(recs)), timeline: make([]timelineRow, 0, nev)}
	rows := make(map[string]*orderRow, len(recs))
	for _, c := range recs {
		if c.AggregateType != eventlog.TypeOrder {
			return nil, fmt.Errorf("seq %d: a %s commit in the order stream", c.Seq, c.AggregateType)
		}
		row, touched := rows[c.AggregateID]
		if !touched {
			if e := existing[c.AggregateID]; e != nil {
				cp := *e
				row = &cp
				rows[c.AggregateID] = row
				ch.orders = append(ch.orders, row)
			}
		}
		var have int64
		if row != nil {
			have = row.Version
		}
		if c.Version != uint64(have)+1 {
			return nil, fmt.Errorf("seq %d: order %s commit v%d follows v%d: the read model is out of step with the log", c.Seq, c.AggregateID, c.Version, have)
		}
		for i, ev := range c.Events {
			p := ev.Payload
			if row == nil {
				placed, ok := p.(events.OrderPlaced)
				if !ok {
					return nil, fmt.Errorf("seq %d: order %s starts with %s, not order.placed", c.Seq, c.AggregateID, ev.Type)
				}
				row = newRow(placed, c.RecordedAt)
				rows[c.AggregateID] = row
				ch.orders = append(ch.orders, row)
				for n, l := range placed.Lines {
					ch.lines = append(ch.lines, lineRow{placed.OrderID, int32(n + 1), storable(l.SKU), l.Qty, l.UnitPrice.Amount, l.Amount.Amount})
				}
			}
			detail := storable(evolve(row, p))
			row.makeStorable()
			row.Version = int64(c.Version) + int64(i)
			row.UpdatedAt = c.RecordedAt
			row.LastSeq = int64(c.Seq)
			ch.timeline = append(ch.timeline, timelineRow{
				OrderID: row.OrderID, Version: row.Version, Seq: int64(c.Seq), At: c.RecordedAt,
				EventType: storable(ev.Type), Status: row.Status, Detail: detail, CommitID: storable(c.CommitID),
				CausationID: storable(c.CausationID), CorrelationID: storable(c.CorrelationID), Actor: storable(c.Actor),
			})
		}
	}
	return ch, nil
}

// makeStorable replaces what PostgreSQL cannot store in the text the
// events set (see [storable]).
func (r *orderRow) makeStorable() {
	for _, f := range []*string{&r.OrderID, &r.CustomerID, &r.PaymentID, &r.CheckoutURL, &r.Carrier, &r.TrackingNumber, &r.StatusReason} {
		*f = storable(*f)
	}
}

func newRow(e events.OrderPlaced, at time.Time) *orderRow {
	return &orderRow{
		OrderID: e.OrderID, CustomerID: e.CustomerID, Customer: customerJSON(e.Customer), ShippingAddress: addressJSON(e.ShippingAddress),
		TotalAmount: e.Total.Amount, Currency: e.Total.Currency, PaymentStatus: PaymentNone, CreatedAt: at,
	}
}

// customerJSON and addressJSON encode what json.Marshal would, up to
// escaping (the same JSON values, so the same jsonb), without reflection.
func customerJSON(c events.Customer) string {
	b := make([]byte, 0, 32+len(c.Name)+len(c.Email)+len(c.Phone))
	b = appendField(b, '{', "name", c.Name, false)
	b = appendField(b, ',', "email", c.Email, false)
	b = appendField(b, ',', "phone", c.Phone, true)
	return string(append(b, '}'))
}

func addressJSON(a events.Address) string {
	b := make([]byte, 0, 96+len(a.Name)+len(a.Line1)+len(a.Line2)+len(a.City)+len(a.Region)+len(a.PostalCode)+len(a.Country))
	b = append(b, '{')
	sep := byte(0)
	for _, f := range [...]struct {
		k, v      string
		omitEmpty bool
	}{{"name", a.Name, true}, {"line1", a.Line1, false}, {"line2", a.Line2, true}, {"city", a.City, false},
		{"region", a.Region, true}, {"postal_code", a.PostalCode, true}, {"country", a.Country, false}} {
		if f.omitEmpty && f.v == "" {
			continue
		}
		b = appendField(b, sep, f.k, f.v, false)
		sep = ','
	}
	return string(append(b, '}'))
}

// appendField appends sep (unless 0), "key":"value"; nothing if
// omitEmpty and the value is empty.
func appendField(b []byte, sep byte, key, v string, omitEmpty bool) []byte {
	if omitEmpty && v == "" {
		return b
	}
	if sep != 0 {
		b = append(b, sep)
	}
	b = append(b, '"')
	b = append(b, key...)
	b = append(b, '"', ':', '"')
	for _, r := range v { // invalid UTF-8 comes as U+FFFD, as encoding/json writes it
		switch {
		case r == '"' || r == '\\':
			b = append(b, '\\', byte(r))
		case r == 0: // jsonb refuses \u0000
			b = utf8.AppendRune(b, utf8.RuneError)
		case r < 0x20:
			b = append(b, '\\', 'u', '0', '0', hexDigit[r>>4], hexDigit[r&0xf])
		default:
			b = utf8.AppendRune(b, r)
		}
	}
	return append(b, '"')
}

const hexDigit = "0123456789abcdef"

// evolve applies one event to a row and returns the timeline's detail
// text for it. Unknown events (nil) change nothing but the version.
func evolve(r *orderRow, p events.Payload) string {
	switch e := p.(type) {
	case events.OrderPlaced:
		r.Status = "placed"
		return fmt.Sprintf("%d line(s), total %s", len(e.Lines), e.Total)
	case events.OrderStockReserved:
		r.Status = "stock_reserved"
	case events.OrderPaymentRequested:
		r.Status = "payment_pending"
		r.PaymentStatus, r.PaymentID, r.CheckoutURL = PaymentPending, e.PaymentID, e.CheckoutURL
		return "payment " + e.PaymentID
	case events.OrderPaid:
		r.Status = "paid"
		r.PaymentStatus, r.PaymentID = PaymentCaptured, e.PaymentID
		return "payment " + e.PaymentID
	case events.OrderShipped:
		r.Status = "shipped"
		r.Carrier, r.TrackingNumber = e.Carrier, e.TrackingNumber
		return e.Carrier + " " + e.TrackingNumber
	case events.OrderDelivered:
		r.Status = "delivered"
	case events.OrderRejected:
		r.Status = "rejected"
		r.StatusReason = e.Reason
		if len(e.ShortSKUs) > 0 {
			return e.Reason + " (short: " + strings.Join(e.ShortSKUs, ", ") + ")"
		}
		return e.Reason
	case events.OrderCancelled:
		r.Status = "cancelled"
		r.StatusReason = e.Reason
		if r.PaymentStatus == PaymentPending {
			r.PaymentStatus = PaymentAbandoned
		}
		if e.Reason == "" {
			return "by " + e.CancelledBy
		}
		return "by " + e.CancelledBy + ": " + e.Reason
	case events.OrderRefunded:
		r.Status = "refunded"
		r.PaymentStatus = PaymentRefunded
		if r.PaymentID == "" {
			r.PaymentID = e.PaymentID
		}
		return "payment " + e.PaymentID
	case events.OrderAttentionRequired:
		// The status stays; the timeline carries the task.
		if e.Reason == events.AttentionRefundedAfterShipment {
			r.PaymentStatus = PaymentRefunded
		}
		if e.PaymentID != "" {
			return e.Reason + ": payment " + e.PaymentID
		}
		return e.Reason
	}
	return ""
}

// queueWrites queues the upserts of a change: the statements the raw
// benchmark baseline runs too.
func queueWrites(b *pgx.Batch, schema string, ch *change) {
	if n := len(ch.orders); n > 0 {
		c := struct {
			id, cust, custJSON, addr, status, cur, pst, pid, url, carrier, track, reason []string
			total, version, seq                                                          []int64
			created, updated                                                             []time.Time
		}{}
		for _, col := range []*[]string{&c.id, &c.cust, &c.custJSON, &c.addr, &c.status, &c.cur, &c.pst, &c.pid, &c.url, &c.carrier, &c.track, &c.reason} {
			*col = make([]string, 0, n)
		}
		c.total, c.version, c.seq = make([]int64, 0, n), make([]int64, 0, n), make([]int64, 0, n)
		c.created, c.updated = make([]time.Time, 0, n), make([]time.Time, 0, n)
		for _, r := range ch.orders {
			c.id = append(c.id, r.OrderID)
			c.cust = append(c.cust, r.CustomerID)
			c.custJSON = append(c.custJSON, r.Customer)
			c.addr = append(c.addr, r.ShippingAddress)
			c.status = append(c.status, r.Status)
			c.total = append(c.total, r.TotalAmount)
			c.cur = append(c.cur, r.Currency)
			c.pst = append(c.pst, r.PaymentStatus)
			c.pid = append(c.pid, r.PaymentID)
			c.url = append(c.url, r.CheckoutURL)
			c.carrier = append(c.carrier, r.Carrier)
			c.track = append(c.track, r.TrackingNumber)
			c.reason = append(c.reason, r.StatusReason)
			c.created = append(c.created, r.CreatedAt)
			c.updated = append(c.updated, r.UpdatedAt)
			c.version = append(c.version, r.Version)
			c.seq = append(c.seq, r.LastSeq)
		}
		b.Queue(`INSERT INTO `+schema+`.orders (`+orderColumns+`)
			SELECT u.order_id, u.customer_id, u.customer::jsonb, u.shipping_address::jsonb, u.status, u.total_amount, u.currency,
			       u.payment_status, u.payment_id, u.checkout_url, u.carrier, u.tracking_number, u.status_reason,
			       u.created_at, u.updated_at, u.version, u.last_seq
			FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::int8[], $7::text[], $8::text[], $9::text[],
			            $10::text[], $11::text[], $12::text[], $13::text[], $14::timestamptz[], $15::timestamptz[], $16::int8[], $17::int8[])
			     AS u(`+orderColumns+`)
			ON CONFLICT (order_id) DO UPDATE SET
				status = EXCLUDED.status, payment_status = EXCLUDED.payment_status, payment_id = EXCLUDED.payment_id,
				checkout_url = EXCLUDED.checkout_url, carrier = EXCLUDED.carrier, tracking_number = EXCLUDED.tracking_number,
				status_reason = EXCLUDED.status_reason, updated_at = EXCLUDED.updated_at, version = EXCLUDED.version,
				last_seq = EXCLUDED.last_seq`,
			c.id, c.cust, c.custJSON, c.addr, c.status, c.total, c.cur, c.pst, c.pid, c.url, c.carrier, c.track, c.reason,
			c.created, c.updated, c.version, c.seq)
	}
	if n := len(ch.lines); n > 0 {
		id, sku := make([]string, 0, n), make([]string, 0, n)
		no := make([]int32, 0, n)
		qty, price, amount := make([]int64, 0, n), make([]int64, 0, n), make([]int64, 0, n)
		for _, l := range ch.lines {
			id, no, sku = append(id, l.OrderID), append(no, l.LineNo), append(sku, l.SKU)
			qty, price, amount = append(qty, l.Qty), append(price, l.UnitPrice), append(amount, l.Amount)
		}
		b.Queue(`INSERT INTO `+schema+`.order_lines (order_id, line_no, sku, qty, unit_price, amount)
			SELECT * FROM unnest($1::text[], $2::int4[], $3::text[], $4::int8[], $5::int8[], $6::int8[])`,
			id, no, sku, qty, price, amount)
	}
	if n := len(ch.timeline); n > 0 {
		id, typ, status, detail := make([]string, 0, n), make([]string, 0, n), make([]string, 0, n), make([]string, 0, n)
		commit, cause, corr, actor := make([]string, 0, n), make([]string, 0, n), make([]string, 0, n), make([]string, 0, n)
		version, seq := make([]int64, 0, n), make([]int64, 0, n)
		at := make([]time.Time, 0, n)
		for _, t := range ch.timeline {
			id, version, seq, at = append(id, t.OrderID), append(version, t.Version), append(seq, t.Seq), append(at, t.At)
			typ, status, detail = append(typ, t.EventType), append(status, t.Status), append(detail, t.Detail)
			commit, cause, corr, actor = append(commit, t.CommitID), append(cause, t.CausationID), append(corr, t.CorrelationID), append(actor, t.Actor)
		}
		b.Queue(`INSERT INTO `+schema+`.order_timeline (order_id, version, seq, at, event_type, status, detail, commit_id, causation_id, correlation_id, actor)
			SELECT * FROM unnest($1::text[], $2::int8[], $3::int8[], $4::timestamptz[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[])`,
			id, version, seq, at, typ, status, detail, commit, cause, corr, actor)
	}
}
