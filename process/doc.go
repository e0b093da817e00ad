// Package process holds Ordo's process managers as application logic:
// long-running processes that react to commits and timers by sending
// commands. It knows the log only through its port (package eventlog),
// the aggregates, the command handlers (internal/command) and the payment
// provider's client interface (internal/psp); what delivers messages to
// it is a runtime's business (package sagas runs it on JetStream).
//
//   - [Manager] and [Message] are what a runtime drives a process manager
//     by; [Permanent] marks an error retrying cannot fix; [CommandID]
//     derives the id of a command from the event that caused it.
//   - [Checkout] is the checkout: reserve every line or none, ask the
//     payment provider for the total, wait for the payment, compensate
//     on shortage, decline, timeout or cancellation. Its event table is
//     on the type.
//   - [PaymentSync] records what the payment provider says about an
//     intent on its payment. The webhook endpoint (internal/httpapi), the
//     checkout's reconciliation and its void and refund calls all go
//     through it.
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
// # State
//
// The checkout reads the aggregate of the commit it handles at least as
// new as that commit (command.Includes) and other aggregates as their
// handler knows them (command.Cached): such a read only picks the next
// command, which the handler decides again on the log's state, or reads
// fields that never change. Where a state older than the log's would
// pick no command at all (the order read by a payment's capture, its
// reconciliation and its timeout), the checkout reads it as the log has
// it (command.Current): on a cluster another instance may have carried
// the order on, and no command would reach the handler's check.
package process
