// Package sagas is the runtime that runs Ordo's process managers (package
// process: the checkout) on the JetStream log: it delivers commits, fired
// timers and redriven dead letters to each process manager through
// watermill's router, retries, and dead-letters what keeps failing.
//
// # Runtime
//
// A [Runtime] drives each process.Manager with watermill's
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
// Handlers run at least once per message; process managers make that
// harmless (see package process).
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
// stream order; a subject waiting for its turn holds no worker. A process
// manager that implements process.Urgent gets a second consumer (an
// urgent lane) on the streams it names, through which its urgent events
// (the checkout's compensations) run ahead of the main lane. Every
// consumer is pinned to one runtime at a time (JetStream's pinned-client
// priority policy): with several instances, one handles a consumer's
// messages and the others take over when it stops (at once when it
// closes, after Options.PinnedTTL when it was killed). Runtime.Backlog
// reports what each consumer has not handled. Process managers must be
// safe for concurrent use. See decision 024.
package sagas
