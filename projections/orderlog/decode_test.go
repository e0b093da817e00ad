package orderlog

import (
	"crypto/ed25519"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ordo-shop/ordo/eventlog"
	"github.com/ordo-shop/ordo/events"
)

// samplePayloads has every order event, with strings that need escaping
// or are not ASCII.
func samplePayloads() []events.Payload {
	m := events.Money{Amount: 4498, Currency: "CNY"}
	return []events.Payload{
		events.OrderPlaced{
			OrderID: "o-1", CustomerID: "c-1",
			Customer: events.Customer{Name: `张伟 "Zhang" <&>`, Email: "zhang.wei@example.com", Phone: "+86 138 0013 8000"},
			Lines: []events.OrderLine{{SKU: "TEA-250", Qty: 2, UnitPrice: events.Money{Amount: 1999, Currency: "CNY"}, Amount: events.Money{Amount: 3998, Currency: "CNY"}},
				{SKU: "CUP-1", Qty: 1, UnitPrice: events.Money{Amount: 500, Currency: "CNY"}, Amount: events.Money{Amount: 500, Currency: "CNY"}}},
			Total:           m,
			ShippingAddress: events.Address{Name: "张伟", Line1: "1 Nanjing Rd\nFloor 2\t\\", City: "上海", PostalCode: "200000", Country: "CN", Region: "😀"},
			IdempotencyKey:  "k-1", RequestHash: "h-1",
		},
		events.OrderPlaced{OrderID: "o-2", CustomerID: "c-2", Lines: []events.OrderLine{}, Total: events.Money{Amount: -5, Currency: "JPY"}},
		events.OrderStockReserved{OrderID: "o-1"},
		events.OrderPaymentRequested{OrderID: "o-1", PaymentID: "pay_1", Amount: m, CheckoutURL: "http://psp.local/pay/pay_1?a=1&b=2"},
		events.OrderPaid{OrderID: "o-1", PaymentID: "pay_1", Amount: m},
		events.OrderShipped{OrderID: "o-1", Carrier: "SF", TrackingNumber: "SF1"},
		events.OrderDelivered{OrderID: "o-1"},
		events.OrderRejected{OrderID: "o-1", Reason: "out of stock", ShortSKUs: []string{"TEA-250", "CUP-1"}},
		events.OrderRejected{OrderID: "o-1", Reason: ""},
		events.OrderCancelled{OrderID: "o-1", Reason: "too late", CancelledBy: "customer", WasPaid: true},
		events.OrderCancelled{OrderID: "o-1", CancelledBy: "payment_timeout"},
		events.OrderRefunded{OrderID: "o-1", PaymentID: "pay_1", Amount: m},
	}
}

// sampleCommits returns stored commits (events.Marshal) of one and of
// several events each.
func sampleCommits(t testing.TB) [][]byte {
	t.Helper()
	reg, err := events.Standard()
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	ps := samplePayloads()
	at := time.Date(2026, 11, 25, 22, 1, 2, 345678900, time.FixedZone("x", 3600))
	for i := range ps {
		n := 1 + i%3
		var evs []events.Event
		for j := 0; j < n && i+j < len(ps); j++ {
			ev, err := reg.Encode(ps[i+j])
			if err != nil {
				t.Fatal(err)
			}
			evs = append(evs, ev)
		}
		c := &events.Commit{CommitID: "cmd-" + strings.Repeat("x", i), AggregateType: eventlog.TypeOrder, AggregateID: "o-1",
			Version: uint64(i + 1), Events: evs,
			Metadata: events.Metadata{CorrelationID: "corr", CausationID: "cause", Actor: "customer:c-1", RecordedAt: at, Traceparent: "00-abc-def-01"}}
		if i%2 == 0 {
			c.Metadata = events.Metadata{RecordedAt: at.UTC()}
		}
		// Every third commit is signed, as orderd writes them now.
		var signer events.CommitSigner
		if i%3 == 1 {
			signer = sampleSigner(t)
		}
		if err := c.SealSigned("prev", signer); err != nil {
			t.Fatal(err)
		}
		b, err := events.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

// sampleSigner signs sample commits with a fixed key.
func sampleSigner(t testing.TB) events.CommitSigner {
	s, err := events.NewEd25519Signer(ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize)))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// slowDecode is the reference: events.Unmarshal and the registry.
func slowDecode(t testing.TB, reg *events.Registry, data []byte) (*Commit, error) {
	c, err := events.Unmarshal(data)
	if err != nil {
		return nil, err
	}
	return NewDecoder(reg).FromRecord(eventlog.Record{Seq: 7, Commit: c})
}

// sameCommit compares everything but the idempotency key and request
// hash of order.placed, which the fast path does not keep.
func sameCommit(a, b *Commit) bool {
	if !a.RecordedAt.Equal(b.RecordedAt) {
		return false
	}
	x, y := *a, *b
	x.RecordedAt, y.RecordedAt = time.Time{}, time.Time{}
	x.Events, y.Events = unkept(x.Events), unkept(y.Events)
	return reflect.DeepEqual(x, y)
}

func unkept(evs []Event) []Event {
	out := make([]Event, len(evs))
	for i, ev := range evs {
		if p, ok := ev.Payload.(events.OrderPlaced); ok {
			p.IdempotencyKey, p.RequestHash = "", ""
			ev.Payload = p
		}
		out[i] = ev
	}
	return out
}

func TestDecodeFastMatchesTheRegistry(t *testing.T) {
	reg, err := events.Standard()
	if err != nil {
		t.Fatal(err)
	}
	fast := fastTypes(reg)
	if len(fast) != 9 {
		t.Fatalf("fast path reads %d order event types, want 9: %v", len(fast), fast)
	}
	commits := sampleCommits(t)
	// The same commits with their keys in another order and with white
	// space, as another writer might store them.
	for _, b := range sampleCommits(t) {
		var v map[string]any
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatal(err)
		}
		ind, err := json.MarshalIndent(v, " ", "\t")
		if err != nil {
			t.Fatal(err)
		}
		commits = append(commits, ind)
	}
	for i, b := range commits {
		want, err := slowDecode(t, reg, b)
		if err != nil {
			t.Fatalf("commit %d: %v", i, err)
		}
		got, ok := decodeFast(fast, 7, b)
		if !ok {
			t.Fatalf("commit %d: the fast path refused a well-formed commit:\n%s", i, b)
		}
		if !sameCommit(got, want) {
			t.Fatalf("commit %d:\nfast %+v\nslow %+v", i, got, want)
		}
	}
}

func TestDecodeFastLeavesTheUnusualToTheRegistry(t *testing.T) {
	reg, err := events.Standard()
	if err != nil {
		t.Fatal(err)
	}
	fast := fastTypes(reg)
	b := string(sampleCommits(t)[2]) // order.payment_requested ... in one commit
	for name, doc := range map[string]string{
		"unknown key":       strings.Replace(b, `"commit_id"`, `"extra":1,"commit_id"`, 1),
		"key in other case": strings.Replace(b, `"commit_id"`, `"Commit_ID"`, 1),
		"duplicate key":     strings.Replace(b, `"commit_id"`, `"aggregate_id":"o-9","commit_id"`, 1),
		"null":              strings.Replace(b, `"prev_hash":"prev"`, `"prev_hash":null`, 1),
		"duplicate sig":     strings.Replace(b, `"prev_hash":"prev"`, `"sig":"x","sig":"y","prev_hash":"prev"`, 1),
		"key_id not string": strings.Replace(b, `"prev_hash":"prev"`, `"key_id":1,"prev_hash":"prev"`, 1),
		"float":             strings.Replace(b, `"amount":4498`, `"amount":4498.0`, 1),
		"newer schema":      strings.Replace(b, `"schema_version":1`, `"schema_version":2`, 1),
		"other event type":  strings.Replace(b, `"order.stock_reserved"`, `"inventory.reserved"`, 1),
		"no events":         b[:strings.Index(b, `"events":`)] + `"events":[],"metadata":{"recorded_at":"2026-11-25T21:01:02.3456789Z"}}`,
		"trailing garbage":  b + "x",
		"bad escape":        strings.Replace(b, `"prev_hash":"prev"`, `"prev_hash":"pr\qev"`, 1),
		"short \\u escape":  strings.Replace(b, `"prev_hash":"prev"`, `"prev_hash":"\u12"`, 1),
		"truncated":         b[:len(b)-2],
		"empty":             "",
	} {
		if doc == b {
			t.Fatalf("%s: the replacement did not apply", name)
		}
		if _, ok := decodeFast(fast, 7, []byte(doc)); ok {
			t.Errorf("%s: the fast path accepted %s", name, doc)
		}
		// Whatever the slow path makes of it is what Decode returns.
		got, gerr := NewDecoder(reg).Decode(eventlog.RawRecord{Seq: 7, Data: []byte(doc)})
		want, werr := slowDecode(t, reg, []byte(doc))
		if (gerr == nil) != (werr == nil) || (gerr == nil && !sameCommit(got, want)) {
			t.Errorf("%s: Decode %v %v, slow path %v %v", name, got, gerr, want, werr)
		}
	}
}

// FuzzDecodeFast holds the fast path to the slow one: whatever it
// accepts, events.Unmarshal and the registry accept too and decode the
// same, except for order.placed's idempotency_key and request_hash,
// which the fast path does not keep (sameCommit).
func FuzzDecodeFast(f *testing.F) {
	for _, b := range sampleCommits(f) {
		f.Add(b)
	}
	reg, err := events.Standard()
	if err != nil {
		f.Fatal(err)
	}
	fast := fastTypes(reg)
	f.Fuzz(func(t *testing.T, data []byte) {
		got, ok := decodeFast(fast, 7, data)
		if !ok {
			return
		}
		want, err := slowDecode(t, reg, data)
		if err != nil {
			t.Fatalf("fast path accepted what the registry refuses (%v): %q", err, data)
		}
		if !sameCommit(got, want) {
			t.Fatalf("%q:\nfast %+v\nslow %+v", data, got, want)
		}
	})
}

func BenchmarkDecode(b *testing.B) {
	reg, err := events.Standard()
	if err != nil {
		b.Fatal(err)
	}
	fast := fastTypes(reg)
	commits := sampleCommits(b)[:3] // placed; placed and reserved; reserved, requested, paid
	b.Run("fast", func(b *testing.B) {
		b.ReportAllocs()
		for i := range b.N {
			if _, ok := decodeFast(fast, 1, commits[i%3]); !ok {
				b.Fatal("refused")
			}
		}
	})
	b.Run("registry", func(b *testing.B) {
		b.ReportAllocs()
		for i := range b.N {
			if _, err := slowDecode(b, reg, commits[i%3]); err != nil {
				b.Fatal(err)
			}
		}
	})
}
