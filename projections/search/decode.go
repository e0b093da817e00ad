package search

import (
	"context"
	"fmt"
	"unicode/utf8"

	"github.com/ordo-shop/ordo/eventlog"
	"github.com/ordo-shop/ordo/projections"
	"github.com/ordo-shop/ordo/projections/orderlog"
)

var _ projections.DecodingSink = (*Sink)(nil)

// Decode implements [projections.DecodingSink]. The runner calls it on
// its one reader goroutine, which with decoding there was this
// projection's bottleneck (docs/decisions/008): so Decode only reads
// the aggregate id from the envelope (which picks the partition) and
// leaves decoding the commit to [Sink.CommitDecoded], which the
// partitions' committers run in parallel (with [orderlog.Decoder]). A
// commit whose id it cannot read that way is decoded here.
func (k *Sink) Decode(rec eventlog.RawRecord) (string, any, error) {
	if id, ok := envelopeAggregateID(rec.Data); ok {
		return id, &undecoded{id: id, rec: rec}, nil
	}
	c, err := k.st.dec.Decode(rec)
	if err != nil {
		return "", nil, err
	}
	return c.AggregateID, c, nil
}

// undecoded is a commit [Sink.Decode] did not decode: the id it read
// and the stored bytes.
type undecoded struct {
	id  string
	rec eventlog.RawRecord
}

// CommitDecoded implements [projections.DecodingSink].
func (k *Sink) CommitDecoded(ctx context.Context, partition int, from, to uint64, recs []projections.Decoded) error {
	cs := make([]*orderlog.Commit, len(recs))
	for i, r := range recs {
		switch v := r.Value.(type) {
		case *orderlog.Commit:
			cs[i] = v
		case *undecoded:
			c, err := k.st.dec.Decode(v.rec)
			if err != nil {
				return projections.Poison(fmt.Errorf("search: partition %d: %w", partition, err))
			}
			if c.AggregateID != v.id {
				return projections.Poison(fmt.Errorf("search: seq %d: aggregate id %q, but the envelope was read as %q", r.Seq, c.AggregateID, v.id))
			}
			cs[i] = c
		default:
			return fmt.Errorf("search: seq %d: decoded as %T, not by this sink", r.Seq, r.Value)
		}
	}
	return k.commit(ctx, partition, from, to, cs)
}

// envelopeAggregateID reads the value of the top-level "aggregate_id" of
// a stored commit without decoding the rest: it scans the envelope's
// keys in order, skipping string, number and literal values, up to
// aggregate_id (the third key as events.Marshal writes it). It gives up
// (false) on anything else before it — an escape in a key or in the id,
// an object or array value, malformed JSON — and the caller then
// decodes the commit. Whatever it returns is checked against the
// decoded commit before the commit is applied.
func envelopeAggregateID(b []byte) (string, bool) {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return "", false
	}
	i++
	for {
		i = skipSpace(b, i)
		key, next, ok := plainString(b, i)
		if !ok {
			return "", false
		}
		i = skipSpace(b, next)
		if i >= len(b) || b[i] != ':' {
			return "", false
		}
		i = skipSpace(b, i+1)
		if i >= len(b) {
			return "", false
		}
		if string(key) == "aggregate_id" {
			id, _, ok := plainString(b, i)
			if !ok || !utf8.Valid(id) {
				return "", false
			}
			return string(id), true
		}
		switch c := b[i]; {
		case c == '"':
			i, ok = skipString(b, i)
			if !ok {
				return "", false
			}
		case c == '-' || c >= '0' && c <= '9' || c == 't' || c == 'f' || c == 'n':
			for i < len(b) && b[i] != ',' && b[i] != '}' && b[i] != ' ' && b[i] != '\n' && b[i] != '\t' && b[i] != '\r' {
				i++
			}
		default:
			return "", false
		}
		i = skipSpace(b, i)
		if i >= len(b) || b[i] != ',' {
			return "", false
		}
		i++
	}
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\n' || b[i] == '\t' || b[i] == '\r') {
		i++
	}
	return i
}

// plainString returns the contents of the string at b[i] if it has no
// escapes and no control characters, and the index after it.
func plainString(b []byte, i int) ([]byte, int, bool) {
	if i >= len(b) || b[i] != '"' {
		return nil, 0, false
	}
	for j := i + 1; j < len(b); j++ {
		switch c := b[j]; {
		case c == '"':
			return b[i+1 : j], j + 1, true
		case c == '\\' || c < 0x20:
			return nil, 0, false
		}
	}
	return nil, 0, false
}

// skipString returns the index after the string at b[i].
func skipString(b []byte, i int) (int, bool) {
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '"':
			return j + 1, true
		case '\\':
			j++
		}
	}
	return 0, false
}
