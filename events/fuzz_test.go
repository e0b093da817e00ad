package events

import (
	"bytes"
	"testing"
)

// FuzzUnmarshal feeds arbitrary bytes to the decoder of stored commits:
// it must refuse or accept, never panic, and an accepted commit must hash
// and canonicalize deterministically.
func FuzzUnmarshal(f *testing.F) {
	f.Add([]byte(`{"commit_id":"c1","aggregate_type":"order","aggregate_id":"o1","version":1,"events":[{"type":"order.placed","schema_version":1,"data":{"a":1}}],"metadata":{"recorded_at":"2026-11-25T12:00:00Z"},"prev_hash":"","hash":""}`))
	f.Add([]byte(`{"version":18446744073709551615,"events":[{"data":1e999}]}`))
	f.Add([]byte(`{"events":[{"type":"x","schema_version":1,"data":"\u003c\u0000"}]}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := Unmarshal(b)
		if err != nil {
			return
		}
		h1, err1 := c.ComputeHash()
		h2, err2 := c.ComputeHash()
		if (err1 == nil) != (err2 == nil) || h1 != h2 {
			t.Fatalf("hash not deterministic: %q %v / %q %v", h1, err1, h2, err2)
		}
		_ = VerifyChain([]*Commit{c})
		for _, e := range c.Events {
			once, err := Canonicalize(e.Data)
			if err != nil {
				continue
			}
			twice, err := Canonicalize(once)
			if err != nil || !bytes.Equal(once, twice) {
				t.Fatalf("canonical form is not stable: %s -> %s (%v)", once, twice, err)
			}
		}
	})
}

func TestUnmarshalRefusesEventsWithoutData(t *testing.T) {
	for _, doc := range []string{
		`{"commit_id":"c","aggregate_type":"order","aggregate_id":"o","version":1,"events":[{"type":"order.placed","schema_version":1}],"metadata":{"recorded_at":"2026-11-25T12:00:00Z"}}`,
		`{"commit_id":"c","aggregate_type":"order","aggregate_id":"o","version":1,"events":[{"type":"order.placed","schema_version":1,"data":{"a":}}],"metadata":{"recorded_at":"2026-11-25T12:00:00Z"}}`,
	} {
		if _, err := Unmarshal([]byte(doc)); err == nil {
			t.Errorf("accepted %s", doc)
		}
	}
}
