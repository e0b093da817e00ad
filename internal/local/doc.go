// Package local is the room that holds Ordo's local-development
// infrastructure: what `go run ./cmd/orderd` starts on a laptop so that it
// needs nothing installed beforehand, and what the tests start for
// themselves. It has no code of its own; its subpackages are:
//
//   - datadir: the data directory's protocol, shared by orderd and
//     orderctl. Every file name in the data directory is declared there
//     and nowhere else, with the list of the files that hold secrets, the
//     atomic file writes, generated secrets, the check of a key file's
//     mode, file locks and the unprivileged user a local server runs as.
//   - natsembed: nats-server with JetStream embedded in the process.
//   - pgserver: a private PostgreSQL run from the installed binaries
//     (initdb, pg_ctl; as an unprivileged user when orderd runs as root).
//     Linux only.
//   - esserver: a local Elasticsearch fetched with Maven and run as an
//     unprivileged user (ORDO_ELASTICSEARCH=local, the tests,
//     scripts/elasticsearch through cmd/esctl). Linux only.
//   - pspsim: the payment provider simulator, run in process by the local
//     default and alone by cmd/pspsim.
//
// What it is not: the servers here are not part of a production
// deployment, which runs against an external NATS cluster, PostgreSQL,
// Elasticsearch and payment provider. orderd built with the production
// tag (`go build -tags production ./cmd/orderd`) links none of pgserver,
// esserver or pspsim, and refuses to start when its configuration would
// need one of them (decision 020). Two subpackages stay in that build:
// datadir, because orderd keeps its lock, its log id and its signing key
// in a data directory in every deployment, and natsembed, because an
// embedded nats-server is pure Go and a legitimate single-node log.
//
// Nothing outside tests imports internal/testkit; test infrastructure
// lives there, not here.
package local
