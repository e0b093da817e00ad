// Package testkit holds helpers that give tests real infrastructure: an
// in-process NATS server with JetStream per test, or a small JetStream
// cluster on loopback; a local default's embedded server with its data
// dir's users ([LocalNATS]); a log made as `orderctl init` makes one
// ([OpenLog], [InitLog]) or as it was before logs had an identity
// ([LegacyLog]); ways to make a stream's direct gets stale
// ([LaggingMirrors]) or a server swallow requests ([Relay]); a PostgreSQL database per test on a private server
// shared by the test binary ([Postgres], [RunMain]); and the commands of
// realistic order lives ([OrderCommands], [RunOrder]). Every helper takes
// a [testing.TB], calls Helper and registers its own cleanup, so a test
// never shuts anything down itself. Every helper that starts a server
// skips the test under `go test -short` ([SkipShort]), the fast lane that
// starts none; only the log's own tests keep an in-process NATS there
// ([LogNATS]).
package testkit
