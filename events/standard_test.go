package events

import (
	"encoding/json"
	"maps"
	"reflect"
	"slices"
	"testing"
)

func mustStandard(tb testing.TB) *Registry {
	tb.Helper()
	r, err := Standard()
	if err != nil {
		tb.Fatalf("Standard: %v", err)
	}
	return r
}

var cny = func(a int64) Money { return Money{Amount: a, Currency: "CNY"} }

// golden pairs one sample of every Ordo payload with its JSON encoding:
// the wire contract that projections, sagas and other programs read.
var golden = []struct {
	payload Payload
	json    string
}{
	{OrderPlaced{
		OrderID:    "o-1",
		CustomerID: "c-1",
		Customer:   Customer{Name: "Li Wei", Email: "li@example.com", Phone: "+86 10 1234 5678"},
		Lines: []OrderLine{
			{SKU: "TEA-250", Qty: 2, UnitPrice: cny(1999), Amount: cny(3998)},
			{SKU: "CUP-1", Qty: 1, UnitPrice: cny(500), Amount: cny(500)},
		},
		Total:           cny(4498),
		ShippingAddress: Address{Name: "Li Wei", Line1: "1 Tea Street", Line2: "Flat 2", City: "Hangzhou", Region: "Zhejiang", PostalCode: "310000", Country: "CN"},
		IdempotencyKey:  "key-1",
		RequestHash:     "sha256:abc",
	}, `{"order_id":"o-1","customer_id":"c-1","customer":{"name":"Li Wei","email":"li@example.com","phone":"+86 10 1234 5678"},` +
		`"lines":[{"sku":"TEA-250","qty":2,"unit_price":{"amount":1999,"currency":"CNY"},"amount":{"amount":3998,"currency":"CNY"}},` +
		`{"sku":"CUP-1","qty":1,"unit_price":{"amount":500,"currency":"CNY"},"amount":{"amount":500,"currency":"CNY"}}],` +
		`"total":{"amount":4498,"currency":"CNY"},` +
		`"shipping_address":{"name":"Li Wei","line1":"1 Tea Street","line2":"Flat 2","city":"Hangzhou","region":"Zhejiang","postal_code":"310000","country":"CN"},` +
		`"idempotency_key":"key-1","request_hash":"sha256:abc"}`},
	{OrderStockReserved{OrderID: "o-1"}, `{"order_id":"o-1"}`},
	{OrderPaymentRequested{OrderID: "o-1", PaymentID: "p-1", Amount: cny(4498), CheckoutURL: "https://psp.test/pay/p-1"},
		`{"order_id":"o-1","payment_id":"p-1","amount":{"amount":4498,"currency":"CNY"},"checkout_url":"https://psp.test/pay/p-1"}`},
	{OrderPaid{OrderID: "o-1", PaymentID: "p-1", Amount: cny(4498)},
		`{"order_id":"o-1","payment_id":"p-1","amount":{"amount":4498,"currency":"CNY"}}`},
	{OrderShipped{OrderID: "o-1", Carrier: "SF", TrackingNumber: "SF123"}, `{"order_id":"o-1","carrier":"SF","tracking_number":"SF123"}`},
	{OrderDelivered{OrderID: "o-1"}, `{"order_id":"o-1"}`},
	{OrderRejected{OrderID: "o-1", Reason: "out of stock", ShortSKUs: []string{"TEA-250"}},
		`{"order_id":"o-1","reason":"out of stock","short_skus":["TEA-250"]}`},
	{OrderCancelled{OrderID: "o-1", Reason: "changed mind", CancelledBy: "customer", WasPaid: true},
		`{"order_id":"o-1","reason":"changed mind","cancelled_by":"customer","was_paid":true}`},
	{OrderRefunded{OrderID: "o-1", PaymentID: "p-1", Amount: cny(4498)},
		`{"order_id":"o-1","payment_id":"p-1","amount":{"amount":4498,"currency":"CNY"}}`},
	{OrderAttentionRequired{OrderID: "o-1", Reason: AttentionRefundedAfterShipment, PaymentID: "p-1", Amount: cny(4498)},
		`{"order_id":"o-1","reason":"payment_refunded_after_shipment","payment_id":"p-1","amount":{"amount":4498,"currency":"CNY"}}`},

	{InventoryPriced{SKU: "TEA-250", Name: "Oolong", Price: cny(1999)},
		`{"sku":"TEA-250","name":"Oolong","price":{"amount":1999,"currency":"CNY"}}`},
	{InventoryStockAdjusted{SKU: "TEA-250", Delta: -3, OnHand: 7}, `{"sku":"TEA-250","delta":-3,"on_hand":7}`},
	{InventoryRestocked{SKU: "TEA-250", Qty: 10, OnHand: 17}, `{"sku":"TEA-250","qty":10,"on_hand":17}`},
	{InventoryReserved{SKU: "TEA-250", OrderID: "o-1", Qty: 2}, `{"sku":"TEA-250","order_id":"o-1","qty":2}`},
	{InventoryReservationFailed{SKU: "TEA-250", OrderID: "o-2", Requested: 5, Available: 3},
		`{"sku":"TEA-250","order_id":"o-2","requested":5,"available":3}`},
	{InventoryReleased{SKU: "TEA-250", OrderID: "o-1", Qty: 2}, `{"sku":"TEA-250","order_id":"o-1","qty":2}`},
	{InventoryCommitted{SKU: "TEA-250", OrderID: "o-1", Qty: 2}, `{"sku":"TEA-250","order_id":"o-1","qty":2}`},

	{PaymentRequested{PaymentID: "p-1", OrderID: "o-1", Amount: cny(4498), Provider: "sim", IntentID: "pi_1", CheckoutURL: "https://psp.test/pay/p-1"},
		`{"payment_id":"p-1","order_id":"o-1","amount":{"amount":4498,"currency":"CNY"},"provider":"sim","intent_id":"pi_1","checkout_url":"https://psp.test/pay/p-1"}`},
	{PaymentAuthorized{PaymentID: "p-1", Amount: cny(4498)}, `{"payment_id":"p-1","amount":{"amount":4498,"currency":"CNY"}}`},
	{PaymentCaptured{PaymentID: "p-1", Amount: cny(4498), ProviderRef: "ch_1"},
		`{"payment_id":"p-1","amount":{"amount":4498,"currency":"CNY"},"provider_ref":"ch_1"}`},
	{PaymentFailed{PaymentID: "p-1", Reason: "card declined"}, `{"payment_id":"p-1","reason":"card declined"}`},
	{PaymentVoided{PaymentID: "p-1", Reason: "payment timeout"}, `{"payment_id":"p-1","reason":"payment timeout"}`},
	{PaymentRefunded{PaymentID: "p-1", Amount: cny(4498), Reason: "order cancelled"},
		`{"payment_id":"p-1","amount":{"amount":4498,"currency":"CNY"},"reason":"order cancelled"}`},
}

func TestStandardRegistersEveryPayload(t *testing.T) {
	want := map[string]int{
		"order.placed": 1, "order.stock_reserved": 1, "order.payment_requested": 1, "order.paid": 1,
		"order.shipped": 1, "order.delivered": 1, "order.rejected": 1, "order.cancelled": 1, "order.refunded": 1,
		"order.attention_required": 1,
		"inventory.priced":         2, "inventory.stock_adjusted": 1, "inventory.restocked": 1, "inventory.reserved": 1,
		"inventory.reservation_failed": 1, "inventory.released": 1, "inventory.committed": 1,
		"payment.requested": 1, "payment.authorized": 1, "payment.captured": 1, "payment.failed": 1,
		"payment.voided": 1, "payment.refunded": 1,
	}
	got := mustStandard(t).Types()
	if !maps.Equal(got, want) {
		t.Errorf("Types() = %v\nwant %v", got, want)
	}
	var sampled []string
	for _, g := range golden {
		sampled = append(sampled, g.payload.EventType())
	}
	slices.Sort(sampled)
	if names := slices.Sorted(maps.Keys(want)); !slices.Equal(sampled, names) {
		t.Errorf("golden samples cover %v\nwant one per type %v", sampled, names)
	}
}

func TestStandardIsFreshEachCall(t *testing.T) {
	a, b := mustStandard(t), mustStandard(t)
	if err := Register[testPayload](a, 1); err != nil {
		t.Fatal(err)
	}
	if _, ok := b.Types()["test.happened"]; ok {
		t.Error("a type registered in one Standard registry shows in another")
	}
}

func TestPayloadJSON(t *testing.T) {
	for _, g := range golden {
		t.Run(g.payload.EventType(), func(t *testing.T) {
			got, err := json.Marshal(g.payload)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != g.json {
				t.Errorf("JSON\n got %s\nwant %s", got, g.json)
			}
		})
	}
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	r := mustStandard(t)
	c := &Commit{CommitID: "c-1", AggregateType: "mixed", AggregateID: "x", Version: 1, Metadata: Metadata{RecordedAt: recordedAt}}
	for _, g := range golden {
		t.Run(g.payload.EventType(), func(t *testing.T) {
			e, err := r.Encode(g.payload)
			if err != nil {
				t.Fatal(err)
			}
			if e.Type != g.payload.EventType() || e.SchemaVersion != r.Types()[e.Type] {
				t.Errorf("encoded as %s v%d", e.Type, e.SchemaVersion)
			}
			if string(e.Data) != g.json {
				t.Errorf("data\n got %s\nwant %s", e.Data, g.json)
			}
			got, err := r.Decode(e)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, g.payload) {
				t.Errorf("decoded %#v\nwant %#v", got, g.payload)
			}
			c.Events = append(c.Events, e)
		})
	}

	// The same events through a stored commit.
	mustSeal(t, c, "")
	b, err := Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	stored, err := Unmarshal(b)
	if err != nil {
		t.Fatal(err)
	}
	all, err := r.DecodeAll(stored)
	if err != nil {
		t.Fatal(err)
	}
	for i, g := range golden {
		if !reflect.DeepEqual(all[i], g.payload) {
			t.Errorf("DecodeAll[%d] = %#v\nwant %#v", i, all[i], g.payload)
		}
	}
}

// TestInventoryPricedV1 is the real upcaster: v1 stored the price as a
// decimal number in major units next to a currency.
func TestInventoryPricedV1(t *testing.T) {
	r := mustStandard(t)
	decode := func(data string) (Payload, error) {
		return r.Decode(Event{Type: "inventory.priced", SchemaVersion: 1, Data: json.RawMessage(data)})
	}

	p, err := decode(`{"sku":"TEA-250","name":"Oolong","price":19.99,"currency":"CNY"}`)
	if err != nil {
		t.Fatal(err)
	}
	if want := (InventoryPriced{SKU: "TEA-250", Name: "Oolong", Price: Money{Amount: 1999, Currency: "CNY"}}); p != want {
		t.Errorf("decoded %#v, want %#v", p, want)
	}
	out, err := upcastInventoryPricedV1(json.RawMessage(`{"sku":"TEA-250","name":"Oolong","price":19.99,"currency":"CNY"}`))
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"sku":"TEA-250","name":"Oolong","price":{"amount":1999,"currency":"CNY"}}`; string(out) != want {
		t.Errorf("upcast to\n%s\nwant\n%s", out, want)
	}

	tests := []struct {
		price    string
		currency string
		want     int64
	}{
		{"19.99", "CNY", 1999},
		{"0.29", "EUR", 29},  // 0.29 is 28.999… as a float64
		{"1.15", "USD", 115}, // 114.999… as a float64
		{"20", "CNY", 2000},
		{"19.9", "CNY", 1990},
		{"19.990", "CNY", 1999},
		{"0", "CNY", 0},
		{"1500", "JPY", 1500},
		{"1500.0", "JPY", 1500},
		{"99000", "KRW", 99000},
		{"1.234", "KWD", 1234},
		{"0.005", "BHD", 5},
		{"12.5", "OMR", 12500},
		{"1e2", "CNY", 10000},
		{"1.999E1", "CNY", 1999},
		{"15e-1", "GBP", 150},
		{"92233720368547758.07", "EUR", 9223372036854775807},
	}
	for _, tt := range tests {
		data := `{"sku":"S","name":"n","price":` + tt.price + `,"currency":"` + tt.currency + `"}`
		p, err := decode(data)
		if err != nil {
			t.Errorf("%s %s: %v", tt.price, tt.currency, err)
			continue
		}
		if got := p.(InventoryPriced).Price; got != (Money{Amount: tt.want, Currency: tt.currency}) {
			t.Errorf("%s %s = %v, want %d", tt.price, tt.currency, got, tt.want)
		}
	}

	refused := []string{
		`{"sku":"S","name":"n","price":19.999,"currency":"CNY"}`,               // too precise for CNY
		`{"sku":"S","name":"n","price":1500.5,"currency":"JPY"}`,               // JPY has no minor unit
		`{"sku":"S","name":"n","price":1.2345,"currency":"KWD"}`,               // KWD has three
		`{"sku":"S","name":"n","price":1e-3,"currency":"EUR"}`,                 // 0.001
		`{"sku":"S","name":"n","price":92233720368547758.08,"currency":"EUR"}`, // int64 overflow
		`{"sku":"S","name":"n","price":1e400,"currency":"EUR"}`,                // overflow
		`{"sku":"S","name":"n","currency":"CNY"}`,                              // no price
		`{"sku":"S","name":"n","price":null,"currency":"CNY"}`,                 // null price
		`{"sku":"S","name":"n","price":19.99}`,                                 // no currency
		`{"sku":"S","name":"n","price":19.99,"currency":"cny"}`,                // not a currency code
		`{"sku":"S","name":"n","price":true,"currency":"CNY"}`,                 // not a number
		`{"sku":"S","name":"n","price":{"amount":1999,"currency":"CNY"}}`,      // already v2
		`["not an object"]`,
	}
	for _, data := range refused {
		if p, err := decode(data); err == nil {
			t.Errorf("%s upcast to %#v, want an error", data, p)
		}
	}
}
