// Package events defines Ordo's log format: the commit envelope that is
// stored as one JetStream message per command, the per-aggregate SHA-256
// hash chain over a canonical encoding of each commit, the event payload
// types, and the explicit type registry with upcasters that turns stored
// events of any schema version into the current payload types.
//
// The package imports only the standard library. Nothing in it is global
// or mutable: a [Registry] is built by a constructor and passed along.
package events
