// Package httpapi serves Ordo's HTTP/JSON command API (README: API): the
// catalog, placing and changing orders, health and readiness, and the
// OpenAPI description of all of it; and the query API over the read model
// (queries.go): an order, its timeline, a customer's orders and the
// projections' state, with read-your-writes through ?position=.
//
// Every error is JSON {"error": {"code", "message"}} with a fitting
// status; domain errors keep the stable codes of the aggregates. Request
// bodies are size-limited and every request runs under a timeout.
package httpapi
