package orderlog

import (
	"errors"
	"fmt"
	"time"

	"github.com/ordo-shop/ordo/eventlog"
	"github.com/ordo-shop/ordo/events"
)

// Commit is one commit of the ORDERS stream as the projections fold it:
// the envelope without its hashes, signature and traceparent, and each event's
// decoded payload.
type Commit struct {
	Seq           uint64 // the stream sequence
	CommitID      string
	AggregateType string
	AggregateID   string
	Version       uint64 // the version of the commit's first event
	RecordedAt    time.Time
	CausationID   string
	CorrelationID string
	Actor         string
	Events        []Event
}

// Event is one event of a [Commit]: its type and its payload as the
// registry decodes it (nil for an event type the registry does not know).
// An [events.OrderPlaced] decoded by the fast path has no IdempotencyKey
// and no RequestHash (see [Decoder]).
type Event struct {
	Type    string
	Payload events.Payload
}

// Decoder decodes order commits. It is safe for concurrent use.
//
// It reads the commits events.Marshal writes with a small scanner, straight
// into a [Commit], without encoding/json's reflection and without decoding
// each event's data twice. Anything it does not expect (an unknown,
// duplicate or escaped key, null, a number that is not an integer, an
// event type or schema version it does not read, which needs the
// registry's upcasters) goes to [events.Unmarshal] and
// [events.Registry.Decode], which give the same result more slowly or
// refuse the commit. The one difference: the fast path does not keep
// order.placed's idempotency_key and request_hash, which no projection
// reads.
type Decoder struct {
	reg  *events.Registry
	fast map[string]int // the event types decodeFast reads, with their schema version
}

// NewDecoder returns a Decoder that falls back on reg, whose current
// schema versions of the order events are the ones it reads itself.
func NewDecoder(reg *events.Registry) *Decoder {
	return &Decoder{reg: reg, fast: fastTypes(reg)}
}

// FromRecord decodes the events of a commit [streams.Store.Fetch] read,
// with the registry. An event type the registry does not know gets a nil
// payload.
func (d *Decoder) FromRecord(rec eventlog.Record) (*Commit, error) {
	c := rec.Commit
	oc := &Commit{
		Seq: rec.Seq, CommitID: c.CommitID, AggregateType: c.AggregateType, AggregateID: c.AggregateID,
		Version: c.Version, RecordedAt: c.Metadata.RecordedAt, CausationID: c.Metadata.CausationID,
		CorrelationID: c.Metadata.CorrelationID, Actor: c.Metadata.Actor,
		Events: make([]Event, len(c.Events)),
	}
	for j, ev := range c.Events {
		p, err := d.reg.Decode(ev)
		if err != nil && !errors.Is(err, events.ErrUnknownEventType) {
			return nil, fmt.Errorf("seq %d: %w", rec.Seq, err)
		}
		oc.Events[j] = Event{Type: ev.Type, Payload: p}
	}
	return oc, nil
}

// Decode decodes a commit as stored ([streams.Store.FetchRaw]): with the
// fast path when it can read the commit, else with events.Unmarshal and
// the registry, which refuse what is malformed.
func (d *Decoder) Decode(rec eventlog.RawRecord) (*Commit, error) {
	if c, ok := decodeFast(d.fast, rec.Seq, rec.Data); ok {
		return c, nil
	}
	c, err := events.Unmarshal(rec.Data)
	if err != nil {
		return nil, fmt.Errorf("seq %d: %w", rec.Seq, err)
	}
	return d.FromRecord(eventlog.Record{Seq: rec.Seq, Commit: c})
}

// eventTypeNames interns the event type names decodeFast reads.
var eventTypeNames = func() map[string]string {
	m := map[string]string{}
	for _, t := range []string{"order.placed", "order.stock_reserved", "order.payment_requested", "order.paid", "order.shipped",
		"order.delivered", "order.rejected", "order.cancelled", "order.refunded"} {
		m[t] = t
	}
	return m
}()

// fastTypes returns the order event types decodeFast reads, with the
// schema version it reads (the registry's current one; older data goes
// through the registry's upcasters).
func fastTypes(reg *events.Registry) map[string]int {
	out := map[string]int{}
	for t, v := range reg.Types() {
		switch t {
		case "order.placed", "order.stock_reserved", "order.payment_requested", "order.paid", "order.shipped",
			"order.delivered", "order.rejected", "order.cancelled", "order.refunded":
			if v == 1 {
				out[t] = v
			}
		}
	}
	return out
}

// decodeFast reads a commit envelope and its order events' data straight
// into a Commit, without encoding/json's reflection and without
// decoding the data twice. It reports false for anything unusual (an
// unknown key, a duplicate key, null, an escaped key, a number that is
// not an integer, an event type or schema version it does not read, a
// commit events.Unmarshal would refuse): the caller then takes the slow
// path. What it accepts, it decodes as encoding/json would, except that
// it does not keep order.placed's idempotency_key and request_hash (the
// projections do not use them); the fuzz test FuzzDecodeFast holds it to
// that.
func decodeFast(fast map[string]int, seq uint64, data []byte) (*Commit, bool) {
	s := &scanner{b: data}
	c := &Commit{Seq: seq}
	var seen uint
	ok := s.object(func(k []byte) bool {
		var bit uint
		ok := false
		switch string(k) {
		case "commit_id":
			bit = 1
			c.CommitID, ok = s.str()
		case "aggregate_type":
			bit = 2
			c.AggregateType, ok = s.str()
		case "aggregate_id":
			bit = 4
			c.AggregateID, ok = s.str()
		case "version":
			bit = 8
			var n int64
			n, ok = s.int()
			ok = ok && n >= 0
			c.Version = uint64(n)
		case "events":
			bit = 16
			c.Events = make([]Event, 0, 2)
			ok = s.array(func() bool {
				ev, ok := decodeEventFast(s, fast)
				c.Events = append(c.Events, ev)
				return ok
			})
		case "metadata":
			bit = 32
			ok = decodeMetadataFast(s, c)
		case "prev_hash":
			bit = 64
			_, _, ok = s.rawString()
		case "hash":
			bit = 128
			_, _, ok = s.rawString()
		case "key_id":
			bit = 256
			_, _, ok = s.rawString()
		case "sig":
			bit = 512
			_, _, ok = s.rawString()
		}
		if !ok || seen&bit != 0 {
			return false
		}
		seen |= bit
		return true
	})
	// The structural rules of events.Unmarshal.
	if !ok || !s.end() || c.CommitID == "" || c.AggregateType == "" || c.AggregateID == "" || c.Version == 0 || len(c.Events) == 0 {
		return nil, false
	}
	return c, true
}

func decodeMetadataFast(s *scanner, c *Commit) bool {
	var seen uint
	return s.object(func(k []byte) bool {
		var bit uint
		ok := false
		switch string(k) {
		case "correlation_id":
			bit = 1
			c.CorrelationID, ok = s.str()
		case "causation_id":
			bit = 2
			c.CausationID, ok = s.str()
		case "actor":
			bit = 4
			c.Actor, ok = s.str()
		case "recorded_at":
			bit = 8
			s.ws()
			start := s.i
			if _, _, ok = s.rawString(); ok {
				// The very code encoding/json runs for a time.Time.
				ok = c.RecordedAt.UnmarshalJSON(s.b[start:s.i]) == nil
			}
		case "traceparent":
			bit = 16
			_, _, ok = s.rawString()
		}
		if !ok || seen&bit != 0 {
			return false
		}
		seen |= bit
		return true
	})
}

// decodeEventFast reads one {type, schema_version, data}. The data is
// decoded where it stands if the type came first (as events.Marshal
// writes it), else skipped and decoded afterwards.
func decodeEventFast(s *scanner, fast map[string]int) (Event, bool) {
	var ev Event
	var seen uint
	sv := int64(-1)
	dataStart, dataEnd := -1, -1
	ok := s.object(func(k []byte) bool {
		var bit uint
		ok := false
		switch string(k) {
		case "type":
			bit = 1
			ev.Type, ok = s.strIn(eventTypeNames)
		case "schema_version":
			bit = 2
			sv, ok = s.int()
		case "data":
			bit = 4
			s.ws()
			if v, known := fast[ev.Type]; known && seen&3 == 3 && int64(v) == sv {
				ev.Payload, ok = decodePayloadFast(s, ev.Type)
			} else {
				dataStart = s.i
				ok = s.skip()
				dataEnd = s.i
			}
		}
		if !ok || seen&bit != 0 {
			return false
		}
		seen |= bit
		return true
	})
	if !ok || seen != 7 || ev.Type == "" {
		return ev, false
	}
	if v, known := fast[ev.Type]; !known || int64(v) != sv {
		return ev, false // unknown type or another schema version: the registry's job
	}
	if dataStart >= 0 {
		sub := &scanner{b: s.b[:dataEnd], i: dataStart}
		ev.Payload, ok = decodePayloadFast(sub, ev.Type)
		if !ok || !sub.end() {
			return ev, false
		}
	}
	return ev, true
}

// fields reads an object whose keys fn knows, refusing duplicates and
// unknown keys: fn returns the key's bit (0: unknown) after consuming
// the value, and whether the value was read.
func fields(s *scanner, fn func(k []byte) (uint, bool)) bool {
	var seen uint
	return s.object(func(k []byte) bool {
		bit, ok := fn(k)
		if !ok || bit == 0 || seen&bit != 0 {
			return false
		}
		seen |= bit
		return true
	})
}

func decodeMoney(s *scanner, m *events.Money) bool {
	return fields(s, func(k []byte) (uint, bool) {
		switch string(k) {
		case "amount":
			var ok bool
			m.Amount, ok = s.int()
			return 1, ok
		case "currency":
			var ok bool
			m.Currency, ok = s.str()
			return 2, ok
		}
		return 0, false
	})
}

func decodePayloadFast(s *scanner, typ string) (events.Payload, bool) {
	var ok bool
	str := func(dst *string, bit uint) (uint, bool) {
		*dst, ok = s.str()
		return bit, ok
	}
	switch typ {
	case "order.placed":
		var e events.OrderPlaced
		ok = fields(s, func(k []byte) (uint, bool) {
			switch string(k) {
			case "order_id":
				return str(&e.OrderID, 1)
			case "customer_id":
				return str(&e.CustomerID, 2)
			case "customer":
				return 4, fields(s, func(k []byte) (uint, bool) {
					switch string(k) {
					case "name":
						return str(&e.Customer.Name, 1)
					case "email":
						return str(&e.Customer.Email, 2)
					case "phone":
						return str(&e.Customer.Phone, 4)
					}
					return 0, false
				})
			case "lines":
				e.Lines = []events.OrderLine{}
				return 8, s.array(func() bool {
					var l events.OrderLine
					ok := fields(s, func(k []byte) (uint, bool) {
						switch string(k) {
						case "sku":
							return str(&l.SKU, 1)
						case "qty":
							var ok bool
							l.Qty, ok = s.int()
							return 2, ok
						case "unit_price":
							return 4, decodeMoney(s, &l.UnitPrice)
						case "amount":
							return 8, decodeMoney(s, &l.Amount)
						}
						return 0, false
					})
					e.Lines = append(e.Lines, l)
					return ok
				})
			case "total":
				return 16, decodeMoney(s, &e.Total)
			case "shipping_address":
				a := &e.ShippingAddress
				return 32, fields(s, func(k []byte) (uint, bool) {
					switch string(k) {
					case "name":
						return str(&a.Name, 1)
					case "line1":
						return str(&a.Line1, 2)
					case "line2":
						return str(&a.Line2, 4)
					case "city":
						return str(&a.City, 8)
					case "region":
						return str(&a.Region, 16)
					case "postal_code":
						return str(&a.PostalCode, 32)
					case "country":
						return str(&a.Country, 64)
					}
					return 0, false
				})
			case "idempotency_key": // no projection reads it: not kept
				_, _, ok := s.rawString()
				return 64, ok
			case "request_hash":
				_, _, ok := s.rawString()
				return 128, ok
			}
			return 0, false
		})
		return e, ok
	case "order.stock_reserved", "order.delivered":
		var id string
		ok = fields(s, func(k []byte) (uint, bool) {
			if string(k) == "order_id" {
				return str(&id, 1)
			}
			return 0, false
		})
		if typ == "order.delivered" {
			return events.OrderDelivered{OrderID: id}, ok
		}
		return events.OrderStockReserved{OrderID: id}, ok
	case "order.payment_requested":
		var e events.OrderPaymentRequested
		ok = fields(s, func(k []byte) (uint, bool) {
			switch string(k) {
			case "order_id":
				return str(&e.OrderID, 1)
			case "payment_id":
				return str(&e.PaymentID, 2)
			case "amount":
				return 4, decodeMoney(s, &e.Amount)
			case "checkout_url":
				return str(&e.CheckoutURL, 8)
			}
			return 0, false
		})
		return e, ok
	case "order.paid", "order.refunded":
		var id, pid string
		var amount events.Money
		ok = fields(s, func(k []byte) (uint, bool) {
			switch string(k) {
			case "order_id":
				return str(&id, 1)
			case "payment_id":
				return str(&pid, 2)
			case "amount":
				return 4, decodeMoney(s, &amount)
			}
			return 0, false
		})
		if typ == "order.paid" {
			return events.OrderPaid{OrderID: id, PaymentID: pid, Amount: amount}, ok
		}
		return events.OrderRefunded{OrderID: id, PaymentID: pid, Amount: amount}, ok
	case "order.shipped":
		var e events.OrderShipped
		ok = fields(s, func(k []byte) (uint, bool) {
			switch string(k) {
			case "order_id":
				return str(&e.OrderID, 1)
			case "carrier":
				return str(&e.Carrier, 2)
			case "tracking_number":
				return str(&e.TrackingNumber, 4)
			}
			return 0, false
		})
		return e, ok
	case "order.rejected":
		var e events.OrderRejected
		ok = fields(s, func(k []byte) (uint, bool) {
			switch string(k) {
			case "order_id":
				return str(&e.OrderID, 1)
			case "reason":
				return str(&e.Reason, 2)
			case "short_skus":
				e.ShortSKUs = []string{}
				return 4, s.array(func() bool {
					v, ok := s.str()
					e.ShortSKUs = append(e.ShortSKUs, v)
					return ok
				})
			}
			return 0, false
		})
		return e, ok
	case "order.cancelled":
		var e events.OrderCancelled
		ok = fields(s, func(k []byte) (uint, bool) {
			switch string(k) {
			case "order_id":
				return str(&e.OrderID, 1)
			case "reason":
				return str(&e.Reason, 2)
			case "cancelled_by":
				return str(&e.CancelledBy, 4)
			case "was_paid":
				var ok bool
				e.WasPaid, ok = s.bool()
				return 8, ok
			}
			return 0, false
		})
		return e, ok
	}
	return nil, false
}
