// Package audit checks the event log the way an auditor would, from the
// stored bytes up: every aggregate's hash chain, the stream sequences
// without holes, every event decodable by its registered schema, every
// commit's signature by the signing rule, and the heads an earlier check
// saved (decision 010, decision 016).
//
// [Verify] checks whole streams or one aggregate and returns a [Report];
// [CheckAggregate] checks one aggregate's history for a reader who wants
// to see it. [CheckInvariants] checks the money and the stock: it folds
// every order, SKU and payment from its events and returns an
// [InvariantReport] with each violation named by invariant, and what a
// running shop still has in progress listed apart (the randomized soak
// tests of package sagas check their logs with it). None prints
// anything: orderctl parses flags, calls them and prints the findings.
// Progress is reported through a callback.
package audit
