// Package storetest is the acceptance suite every implementation of Ordo's
// event store must pass: the JetStream store in package streams on one
// node and on a replicated cluster, and any future one.
//
// Call [Run] from a test with a constructor that returns a fresh store.
package storetest
