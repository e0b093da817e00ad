package httpapi

import "testing"

// TestCustomersSeeStaffAsARole: in a customer's timeline, staff ids are
// replaced by "customer service" (and their request's correlation id
// dropped); the customer's own actor and Ordo's processes stay.
func TestCustomersSeeStaffAsARole(t *testing.T) {
	for _, c := range []struct{ actor, want, corr string }{
		{"agent:agent-7", staffActor, ""},
		{"admin:ops", staffActor, ""},
		{"customer:cust-1", "customer:cust-1", "req_1"},
		{"customer:cust-2", staffActor, ""},
		{"sagas:checkout", "sagas:checkout", "req_1"},
		{"psp:sim", "psp:sim", "req_1"},
		{"someone-else", staffActor, ""},
		{"", "", "req_1"},
	} {
		e := timelineEntry{Actor: c.actor, CorrelationID: "req_1"}
		customerView(&e, "cust-1")
		if e.Actor != c.want || e.CorrelationID != c.corr {
			t.Errorf("%q: seen as %q (correlation %q), want %q (%q)", c.actor, e.Actor, e.CorrelationID, c.want, c.corr)
		}
	}
}
