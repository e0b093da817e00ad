// Package aggregates holds what Ordo's three pure deciders share: the
// [Decider] description the command handler drives, and [DomainError], the
// error every refused command returns. The deciders themselves live in the
// order, inventory and payment sub-packages.
//
// Everything under aggregates is pure: no I/O, no clock, no randomness.
// Time, ids and prices arrive inside commands.
package aggregates
