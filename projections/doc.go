// Package projections will hold the projection runner and the read models
// built from the log: PostgreSQL order status (projections/postgres) and
// the Elasticsearch customer-service index (projections/search). They
// arrive with their issues; nothing here is wired yet.
package projections
