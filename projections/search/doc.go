// Package search is the customer-service lookup: a projection of the
// ORDERS stream into Elasticsearch, one document per order, and the
// search behind GET /v1/search/orders.
//
// The projection is a [projections.Sink] run by the shared
// [projections.Runner]: documents are written with the bulk API at
// version_type=external with the stream sequence of the order's last
// commit as version, so replays, redeliveries and stale writers never
// take a document back (a 409 means already applied). Each partition's
// checkpoint is a document in the same index, moved after the batch's
// bulk request succeeded, with optimistic concurrency. Indices are
// versioned (<prefix>orders_vN) behind the alias <prefix>orders, made
// from one index template; [Store.Rebuild] builds the next version and
// swaps the alias atomically.
//
// The mappings suit the minimal Elasticsearch distribution (no
// analysis-common module: no ngram, edge_ngram or cjk filters): names use
// the standard analyzer (each CJK character a token, so phrase queries
// find Chinese names and parts of them) with index_prefixes for
// as-you-type Latin names; emails and phone numbers are normalised in Go
// ([NormalizeEmail], [PhoneDigits]) and stored as keywords, phones with
// all their suffixes of four digits and more.
//
// A [Store] does no I/O until used, so Ordo starts while Elasticsearch
// is down; failures then wrap [ErrUnavailable].
package search
