package main

import (
	"errors"
	"strings"

	"github.com/ordo-shop/ordo/internal/config"
)

// productionTag is the build tag of the production binary: built with
// it, orderd links none of the local servers (internal/local's pgserver,
// esserver and pspsim) and refuses a configuration that would start one
// (local_production.go; decision 020).
const productionTag = "production"

// localServers names the local servers cfg would have orderd start, each
// with the variable that replaces it by a server of one's own; none for
// a production configuration. The embedded NATS is not among them: a
// production build keeps it.
func localServers(cfg config.Config) []string {
	var need []string
	if cfg.PostgresURL == "" {
		need = append(need, "the private PostgreSQL (set ORDO_POSTGRES_URL)")
	}
	if cfg.ElasticsearchURL == "" && cfg.Elasticsearch == "local" {
		need = append(need, "the local Elasticsearch (set ORDO_ELASTICSEARCH_URL, or unset ORDO_ELASTICSEARCH for no search)")
	}
	if cfg.PSPURL == "" {
		need = append(need, "the in-process payment simulator (set ORDO_PSP_URL)")
	}
	return need
}

// errNotInThisBuild is what a production build answers for a local
// server.
var errNotInThisBuild = errors.New("not in the production build (-tags " + productionTag + ")")

// refusal is the error of a production build asked to start local
// servers: one message naming each server and the variable to set.
func refusal(need []string) error {
	return errors.New("this is the production build (-tags " + productionTag + "), which starts no local server, but this configuration needs " +
		strings.Join(need, ", ") + ": point it at servers of your own")
}
