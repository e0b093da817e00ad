package postgres

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/ordo-shop/ordo/events"
	"github.com/ordo-shop/ordo/projections/orderlog"
)

// TestOrderIDsReadsBackOnlyWhatItLacks: orders that start in the batch
// and those the cache holds are not read back, however many commits of
// theirs the batch holds.
func TestOrderIDsReadsBackOnlyWhatItLacks(t *testing.T) {
	c := func(id string, v uint64) *orderlog.Commit { return &orderlog.Commit{AggregateID: id, Version: v} }
	recs := []*orderlog.Commit{c("new", 1), c("new", 2), c("cached", 4), c("old", 3), c("new", 3), c("old", 4), c("cached", 5)}
	got := orderIDs(recs, map[string]*orderRow{"cached": {}})
	if !reflect.DeepEqual(got, []string{"old"}) {
		t.Fatalf("read back %v, want [old]", got)
	}
}

// TestRowJSONMatchesEncodingJSON: the customer and address columns hold
// the same JSON values json.Marshal gives (so the same jsonb).
func TestRowJSONMatchesEncodingJSON(t *testing.T) {
	odd := "a\"b\\c\n\x01\x7f<&>\u2028 张伟 😀 \xff\xfe end"
	same := func(what, got string, v any) {
		t.Helper()
		want, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		var a, b any
		if err := json.Unmarshal([]byte(got), &a); err != nil {
			t.Fatalf("%s: %v in %s", what, err, got)
		}
		if err := json.Unmarshal(want, &b); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("%s:\n got %s\nwant %s", what, got, want)
		}
	}
	for _, c := range []events.Customer{{}, {Name: "x", Email: "y"}, {Name: odd, Email: odd, Phone: odd}} {
		same("customer", customerJSON(c), c)
	}
	for _, a := range []events.Address{{}, {Line1: "l", City: "c", Country: "CN"},
		{Name: odd, Line1: odd, Line2: odd, City: odd, Region: odd, PostalCode: odd, Country: odd}} {
		same("address", addressJSON(a), a)
	}
}
