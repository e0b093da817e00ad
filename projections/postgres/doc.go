// Package postgres is the order-status read model in PostgreSQL: the
// [projections.Sink] that applies ORDERS commits, the queries the API
// serves from it, the leases that share its partitions among instances,
// the embedded migrations, and blue-green rebuilds.
//
// # Layout
//
// Migrations (migrations/*.sql, applied by [Migrate]) create the registry
// in schema ordo: projection_versions (every version of a projection and
// which one is live), projection_instances and projection_leases.
//
// Each version N of the read model is its own schema, order_status_vN,
// made from order_status.sql: checkpoints (one row per partition),
// orders, order_lines and order_timeline. Queries read the live version
// through views of the same names in schema order_status. A rebuild
// ([Store.Rebuild]) fills a new version beside the live one, catches it
// up, and then, in one transaction that briefly holds the live
// checkpoints, repoints the views and the registry: readers see the old
// version or the new one, never a mix and never an error. The previous
// version is kept (state retired) until the next rebuild, so a statement
// already running against it finishes.
//
// # Concurrency
//
// A [Store] is safe for concurrent use. Every batch is applied with its
// checkpoint in one transaction that first moves the checkpoint
// conditionally (UPDATE ... WHERE seq = from): two writers of the same
// partition cannot both apply a batch.
package postgres
