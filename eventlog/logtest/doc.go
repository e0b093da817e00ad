// Package logtest is the acceptance suite every implementation of Ordo's
// log (package eventlog) must pass: the JetStream store in package
// streams on one node and on a replicated cluster, and the in-memory log
// in package memlog.
//
// Call [Run] from a test with a constructor that returns a log. The suite
// uses fresh aggregate ids in every case and asserts nothing about
// commits it did not append, so several cases may share one log.
//
// [Replay] and [FetchPartition] are read helpers for tests that want a
// whole stream, or one partition of it, through the port's Fetch.
package logtest
