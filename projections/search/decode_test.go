package search

import (
	"testing"
	"time"

	"github.com/ordo-shop/ordo/events"
)

func TestEnvelopeAggregateID(t *testing.T) {
	c := &events.Commit{
		CommitID: "c-1", AggregateType: "order", AggregateID: "ord-欧阳-1", Version: 3,
		Events:   []events.Event{{Type: "order.paid", Data: []byte(`{"order_id":"x","aggregate_id":"y"}`)}},
		Metadata: events.Metadata{RecordedAt: time.Unix(1, 0).UTC()},
	}
	b, err := events.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	if id, ok := envelopeAggregateID(b); !ok || id != c.AggregateID {
		t.Fatalf("envelopeAggregateID(%s) = %q, %v", b, id, ok)
	}
	for _, tc := range []struct {
		in string
		id string
		ok bool
	}{
		{` { "version" : 2 , "aggregate_type":"order","aggregate_id" : "a"}`, "a", true},
		{`{"deleted":true,"x":null,"n":-1.5e3,"aggregate_id":"a"}`, "a", true},
		{`{"commit_id":"q\"uote","aggregate_id":"a"}`, "a", true},
		{`{"aggregate_id":"a\\b"}`, "", false},   // an escape: decode instead
		{`{"aggregate_id":"a\xffb"}`, "", false}, // invalid UTF-8
		{`{"events":[],"aggregate_id":"a"}`, "", false},
		{`{"aggr\u0065gate_id":"a"}`, "", false},
		{`{"aggregate_id":1}`, "", false},
		{`{"commit_id":"a"`, "", false},
		{`["aggregate_id","a"]`, "", false},
		{``, "", false},
	} {
		if id, ok := envelopeAggregateID([]byte(tc.in)); id != tc.id || ok != tc.ok {
			t.Errorf("envelopeAggregateID(%s) = %q, %v; want %q, %v", tc.in, id, ok, tc.id, tc.ok)
		}
	}
}

// FuzzEnvelopeAggregateID: whatever id the scan reads from an envelope
// that events.Unmarshal accepts is the decoded commit's, unless the
// envelope names the id more than once (which events.Marshal never
// writes, and which the sink then refuses rather than misapplies).
func FuzzEnvelopeAggregateID(f *testing.F) {
	f.Add([]byte(`{"commit_id":"c","aggregate_type":"order","aggregate_id":"o-1","version":1,"events":[{"type":"order.placed","schema_version":1,"data":{}}],"metadata":{"recorded_at":"2026-01-01T00:00:00Z"},"prev_hash":"","hash":""}`))
	f.Add([]byte(`{"aggregate_id":"a","Aggregate_ID":"b"}`))
	f.Add([]byte(`{"commit_id":"c","aggregate_type":"order","aggregate_id":"o-1","version":1,"events":[{"type":"order.placed","schema_version":1,"data":{}}],"metadata":{"recorded_at":"2026-01-01T00:00:00Z"},"prev_hash":"","hash":"","key_id":"ed25519:0123456789abcdef","sig":"c2ln"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		id, ok := envelopeAggregateID(b)
		if !ok {
			return
		}
		c, err := events.Unmarshal(b)
		if err != nil || c.AggregateID == id {
			return
		}
		if n := countFold(string(b), `"aggregate_id"`); n < 2 {
			t.Fatalf("scan read %q, decoding gives %q", id, c.AggregateID)
		}
	})
}

// countFold counts the case-insensitive occurrences of sub in s.
func countFold(s, sub string) int {
	n := 0
	for i := 0; i+len(sub) <= len(s); i++ {
		if equalFold(s[i:i+len(sub)], sub) {
			n++
		}
	}
	return n
}

func equalFold(a, b string) bool {
	for i := range len(a) {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}
