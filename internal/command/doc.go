// Package command runs commands against event-sourced aggregates: load the
// aggregate's state, decide, append the resulting commit with optimistic
// concurrency, and retry a bounded number of times on conflict.
//
// A [Handler] serialises the commands for one aggregate inside the process,
// so a hot aggregate (a flash-sale SKU) queues instead of spinning on
// conflicts, and keeps decided states in a bounded in-memory cache keyed by
// the stream sequence of each aggregate's last commit. Conflicts can then
// only come from another process, and are healed by reading just the
// commits after the cached sequence.
package command
