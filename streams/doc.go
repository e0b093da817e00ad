// Package streams is Ordo's event store on NATS JetStream, and the only
// package that knows subjects. It implements the log's port, package
// eventlog (whose acceptance suite, eventlog/logtest, it passes on one
// server and on a replicated cluster), and adds what only the JetStream
// log has: the log's identity, its dead-letter and timer streams, durable
// consumers for the process managers' runtime, and raw reads for
// auditors.
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
// metadata under "ordo.partitions" ([eventlog.Partition]). The token
// lets several instances share a projection by partition while each
// aggregate's commits stay in order. Ids are restricted by [ValidID] so that no id can inject subject
// tokens or wildcards.
//
// # Writing
//
// One command's events form one [events.Commit], stored as one message:
// a commit is atomic by construction. [Store.Append] publishes it with the
// commit id as Nats-Msg-Id (idempotent retries) and the aggregate's last
// known stream sequence as Nats-Expected-Last-Subject-Sequence (optimistic
// concurrency: [eventlog.ErrConflict] means reload and decide again).
//
// # Reading
//
// [Store.Load] and [Store.Last] read what the stream leader has: Last
// asks the leader (the JetStream API's message get, which only the leader
// answers); Load asks the leader for the aggregate's last sequence, reads
// up to it with the server's direct batch get, which needs no consumer
// and which any replica may answer, and reads from the leader what a
// lagging replica lacked. [Store.Fetch] and [Store.FetchRaw] are plain
// direct gets, for readers that track positions themselves;
// [Store.ReplayRaw] reads a whole stream as stored through an ordered
// consumer; [Store.DurableConsumer] makes the durable, acknowledged
// consumers the process managers' runtime drives. A read whose server stops answering (it died with the
// request) is asked again at once instead of waiting out its deadline.
//
// # Concurrency
//
// A [Store] is safe for concurrent use by many goroutines. Appends are
// checked by the stream leader, so an append decided on a stale state
// costs a conflict and a retry, never a lost or doubled commit. A
// decision that appends nothing ("not found", a refusal) has no such
// check, which is why Load and Last never answer older than the leader.
//
// docs/decisions/001-event-store-on-jetstream.md explains the choices
// and the measurements behind them.
package streams
