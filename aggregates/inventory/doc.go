// Package inventory is the inventory aggregate, one per SKU: a pure
// decider over its name and price, its on-hand count and the units
// reserved for and sold to orders.
//
// [Decide] turns a [Command] and the current [State] into events or a
// *[aggregates.DomainError]; [Evolve] applies one event. The invariant
// OnHand ≥ Reserved ≥ 0 always holds: Decide refuses any command that
// would break it. A reservation that cannot be met is not an error but an
// [events.InventoryReservationFailed] event, which the checkout process
// manager reacts to.
//
// Both functions are pure and safe for concurrent use; neither modifies
// its arguments (Evolve copies the reservation maps before writing).
package inventory
