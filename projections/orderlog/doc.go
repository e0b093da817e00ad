// Package orderlog decodes the commits of the ORDERS stream for the
// projections that fold them (projections/postgres, projections/search):
// a [Decoder] turns a stored commit ([eventlog.RawRecord]) or a decoded
// one ([eventlog.Record]) into a [Commit] whose events carry their
// payloads from the [events.Registry].
//
// The decoder reads the commits events.Marshal writes with a hand-written
// scanner (about 2 µs a commit against about 11 µs for events.Unmarshal
// and the registry, docs/decisions/009) and leaves anything unusual to
// events.Unmarshal and the registry; FuzzDecodeFast holds the two paths
// to the same result.
package orderlog
