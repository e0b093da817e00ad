// Package streams is Ordo's event store on NATS JetStream, and the only
// package that knows subjects.
//
// # Layout
//
// Each aggregate type has one stream and each aggregate one subject, with a
// partition token between type and id:
//
//	ORDERS     order.<p>.<order id>
//	INVENTORY  sku.<p>.<sku>
//	PAYMENTS   payment.<p>.<payment id>
//
// p is FNV-1a (32 bit) of the id modulo the partition count, which is
// fixed when the streams are created (default 16) and recorded in their
// metadata under "ordo.partitions". The token lets several instances
// share a projection or process manager by partition (see
// [SubscribeOptions.Partitions]) while each aggregate's commits stay in
// order. Ids are restricted by [ValidID] so that no id can inject subject
// tokens or wildcards.
//
// # Writing
//
// One command's events form one [events.Commit], stored as one message:
// a commit is atomic by construction. [Store.Append] publishes it with the
// commit id as Nats-Msg-Id (idempotent retries) and the aggregate's last
// known stream sequence as Nats-Expected-Last-Subject-Sequence (optimistic
// concurrency: [ErrConflict] means reload and decide again).
//
// # Reading
//
// [Store.Load] and [Store.Last] use the server's direct get API, which
// needs no consumer; [Store.Replay] reads a whole stream through an
// ordered consumer; [Store.Subscribe] runs durable, acknowledged consumers
// for process managers.
//
// # Concurrency
//
// A [Store] is safe for concurrent use by many goroutines. Reads through
// direct get on a replicated stream may be answered by a replica that
// lags slightly; appends are always checked by the stream leader, so a
// stale read costs a conflict and a retry, never a lost or doubled commit.
//
// docs/decisions/001-event-store-on-jetstream.md explains the choices
// and the measurements behind them.
package streams
