package events

import (
	"encoding/json"
	"testing"
	"time"
)

// BenchmarkUnmarshal decodes a stored one-event checkout commit, what every
// load, replay and projection does per commit.
//
//	go test ./events -run '^$' -bench Unmarshal
func BenchmarkUnmarshal(b *testing.B) {
	c := &Commit{CommitID: "place-ord_1", AggregateType: "order", AggregateID: "ord_1", Version: 1,
		Events:   []Event{{Type: "order.placed", SchemaVersion: 1, Data: json.RawMessage(`{"order_id":"ord_1","customer_id":"cust-42","customer":{"name":"张伟","email":"zhang.wei@example.com","phone":"+86 138 0013 8000"},"lines":[{"sku":"TEA-250","qty":2,"unit_price":{"amount":1999,"currency":"CNY"},"amount":{"amount":3998,"currency":"CNY"}}],"total":{"amount":3998,"currency":"CNY"},"shipping_address":{"name":"张伟","line1":"1 Nanjing Rd","city":"上海","postal_code":"200000","country":"CN"}}`)}},
		Metadata: Metadata{CorrelationID: "req_1", Actor: "customer:cust-42", RecordedAt: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)}}
	if err := c.Seal(""); err != nil {
		b.Fatal(err)
	}
	raw, err := Marshal(c)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		if _, err := Unmarshal(raw); err != nil {
			b.Fatal(err)
		}
	}
}
