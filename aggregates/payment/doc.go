// Package payment is the payment aggregate: a pure decider over one
// payment's state machine
//
//	requested → authorized → captured → refunded
//
// with the exits failed (declined at the provider) and voided (abandoned
// by Ordo) from requested or authorized. Capture may skip authorized.
//
// The amount is fixed when the payment is requested (from the order,
// never from the client or a webhook); every later amount must match it.
// Provider webhooks arrive duplicated and out of order, so a command whose
// effect is already in the state produces no events and no error.
//
// [Decide] and [Evolve] are pure and safe for concurrent use; neither
// modifies its arguments.
package payment
