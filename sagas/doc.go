// Package sagas runs Ordo's process managers: long-running processes that
// react to events by sending commands, such as the checkout ([Checkout]).
//
// # Runtime
//
// A [Runtime] drives each [ProcessManager] with watermill's
// message.Router over durable JetStream consumers (one per process
// manager and stream: its aggregate streams, its fired timers and its
// redrive requests; see streams.ConsumerOptions). The router's middleware,
// outermost first:
//
//   - CorrelationID: the correlation id travels with the message;
//   - PoisonQueue: a message the handler still fails on after its retries
//     is stored in the DLQ stream (streams.DeadLetter: original stream,
//     sequence and subject, the message, the error, the attempts) and
//     acknowledged, so one bad message does not stop the process manager;
//   - Retry: retries with exponential backoff;
//   - Recoverer: a panicking handler becomes a failed attempt.
//
// A JetStream message is acknowledged only after the handler returned,
// that is after every command it sent was appended. A message the runtime
// could not finish (it was stopped or killed) is not acknowledged and the
// server delivers it again after the consumer's AckWait.
//
// # Idempotency
//
// Handlers run at least once per message. Every command a process manager
// sends carries a deterministic id derived from the event that caused it
// ([CommandID]), so a redelivered event produces commands the command
// handler recognises as already applied; beyond that, the aggregates
// decide idempotently (reserving twice for one order, cancelling a
// cancelled order, capturing a captured payment produce nothing).
// Calls to the payment provider carry idempotency keys derived from the
// payment id.
//
// # Dead letters
//
// `orderctl dlq list` shows the dead letters and `orderctl dlq retry <id>`
// sends one back to its process manager (streams.Store.Redrive), which
// handles it like a fresh delivery; on success the dead letter is deleted,
// on failure it is replaced by a new one.
//
// # Concurrency
//
// A Runtime handles up to Options.Workers messages of each consumer at
// once, and messages of one subject (one aggregate) one at a time in
// stream order. Process managers must be safe for concurrent use.
package sagas
