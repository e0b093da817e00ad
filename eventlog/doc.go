// Package eventlog is the port between Ordo and its log: the types a
// commit is stored and read back as, the errors a log answers with, and
// the small interfaces the rest of Ordo reads and appends through.
//
// Package streams implements it on NATS JetStream (the log Ordo runs on);
// package memlog implements it in memory, for fast tests of what sits
// above the log; package logtest is the acceptance suite both pass.
//
// # The model
//
// Each aggregate type (TypeOrder, TypeInventory, TypePayment) has one
// stream of commits, numbered 1, 2, 3, ... without gaps: a commit's
// position is its stream and sequence ([Record]). Each aggregate's
// commits are an ordered subsequence of its type's stream. A stream is
// divided into a fixed number of partitions by aggregate id ([Partition]),
// so readers can share it while each aggregate's commits stay in order.
//
// Appending is optimistic: [Appender.Append] stores a commit only if the
// aggregate's last commit is still at the sequence the caller decided on
// ([ErrConflict] otherwise), and a commit appended twice (a retry after a
// lost answer) is stored once and answered as a duplicate. Reads of one
// aggregate ([AggregateReader]) are at least as new as every acknowledged
// append when the read began, so a decision that appends nothing ("not
// found", a refusal) is not made on a stale state.
//
// The package imports only the standard library and package events; a
// test keeps it so (aggregates/purity_test.go).
package eventlog
