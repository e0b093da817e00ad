// Package projections runs projections: one reader fetches an aggregate
// type's stream in log order and hands each partition (the token p of
// order.<p>.<id>, see package streams) its commits; one committer per
// partition hands them to a [Sink] in batches, each batch applied together
// with the partition's checkpoint in one transaction (exactly-once effect:
// a batch at or below the checkpoint is never applied again, and a batch
// whose checkpoint moved meanwhile is refused whole).
//
// # Checkpoints
//
// A checkpoint is kept per partition and means "every commit of this
// partition up to this stream sequence is applied". Because the reader
// reads the whole stream, gap-free, a partition's checkpoint also moves
// past its own last commit up to what the reader has read: an idle
// partition is not "behind", lag is simply the stream's last sequence
// minus the smallest checkpoint, and a reader waiting for position N of
// any commit knows it is visible once the checkpoint of that commit's
// partition is at least N (or, not knowing the partition, once every
// checkpoint is).
//
// # Sharing
//
// Several instances share a projection through [Leases]: each works on
// the partitions it holds, so each aggregate's commits are applied in
// order by one instance at a time. Leases only divide the work; the
// conditional checkpoint move in [Sink.Commit] is what makes a late
// writer (a lease lost during a long pause) harmless.
//
// # Decoding
//
// A [Sink] receives commits decoded by events.Unmarshal. A [DecodingSink]
// decodes them itself, typically reading only what it needs; with a
// [RawSource] (*streams.Store is one) the runner then reads the stream
// undecoded and decodes each chunk as it arrives, while earlier batches
// commit. projections/orderlog decodes order commits that way for both
// of Ordo's sinks.
//
// # Reconciliation
//
// Each read model can compare itself with the log (the Reconcile methods
// of projections/postgres and projections/search): it folds the commits
// its checkpoints say it has applied with the projector's own fold and
// reports each difference as a [Drift], so a projector applying batches
// meanwhile is not mistaken for drift. [ReadLog] reads the log for them.
//
// projections/postgres implements Sink and Leases for the PostgreSQL
// order-status read model.
package projections
