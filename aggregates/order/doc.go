// Package order is the order aggregate: a pure decider over the order
// state machine
//
//	placed → stock_reserved → payment_pending → paid → shipped → delivered
//
// with the side exits rejected (stock was short, only from placed),
// cancelled (from placed, stock_reserved, payment_pending or paid) and
// refunded (from cancelled).
//
// [Decide] turns a [Command] and the current [State] into events or a
// *[aggregates.DomainError]; [Evolve] applies one event. A command whose
// effect is already in the state (a retry) produces no events and no
// error. Every transition outside the machine is refused with a sentinel
// error matched with errors.Is, such as [ErrInvalidTransition].
//
// Both functions are pure and safe for concurrent use; neither modifies
// its arguments.
package order
