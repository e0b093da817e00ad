// Package natsembed starts a NATS server with JetStream inside the current
// process, for Ordo's local default (orderd with no ORDO_NATS_URL) and for
// tests.
//
// The server is quiet: it logs nothing unless [Options.Logger] is set, it
// installs no signal handlers and it serves no monitoring port. A client in
// the same process reaches it with [Connect], which works even when the
// server does not listen on the network at all. With [Options.Users] it
// admits only those users (Ordo's are made by package natsauth), in
// process as over the network; without them it refuses to listen beyond
// loopback.
package natsembed
