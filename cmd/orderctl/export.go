package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ordo-shop/ordo/eventlog"
	"github.com/ordo-shop/ordo/events"
	"github.com/ordo-shop/ordo/streams"
)

// exportFilter selects the commits export writes by when they were
// recorded (metadata.recorded_at): since inclusive, until exclusive;
// zero times do not limit.
type exportFilter struct {
	since, until time.Time
}

func (f exportFilter) active() bool { return !f.since.IsZero() || !f.until.IsZero() }

func (f exportFilter) keeps(at time.Time) bool {
	return (f.since.IsZero() || !at.Before(f.since)) && (f.until.IsZero() || at.Before(f.until))
}

// exportCount is what one stream's export wrote.
type exportCount struct {
	commits uint64
	// last is the last sequence read (written or not), to resume after.
	last uint64
	// invalid counts messages that are not commits, written as "raw".
	invalid uint64
}

// exportStream writes aggType's commits after sequence after to w as
// JSON Lines in log order: each line is the stored commit as it is,
// preceded by its stream and sequence ({"stream":..,"seq":..,<commit>}),
// so a line can be hash-checked as it stands. A message that is not a
// JSON object (the log is damaged; see verify) is written as
// {"stream":..,"seq":..,"subject":..,"raw":"<stored bytes>"}.
func exportStream(ctx context.Context, store *streams.Store, aggType string, after uint64, f exportFilter, w *bufio.Writer, bar *progress) (exportCount, error) {
	var n exportCount
	n.last = after
	var line []byte
	err := store.ReplayRaw(ctx, aggType, after+1, func(m eventlog.StoredMsg) error {
		n.last = m.Seq
		bar.add(1)
		data := m.Data
		commit := len(data) > 1 && data[0] == '{' && json.Valid(data)
		if commit && bytes.IndexByte(data, '\n') >= 0 {
			var buf bytes.Buffer
			_ = json.Compact(&buf, data) // valid, so it compacts
			data = buf.Bytes()
		}
		if commit && f.active() {
			at, ok := recordedAt(data)
			if !ok {
				commit = false
			} else if !f.keeps(at) {
				return nil
			}
		}
		line = append(line[:0], `{"stream":"`...)
		line = append(line, m.Stream...)
		line = append(line, `","seq":`...)
		line = strconv.AppendUint(line, m.Seq, 10)
		if commit {
			if len(data) > 2 {
				line = append(line, ',')
			}
			line = append(line, data[1:]...)
		} else {
			n.invalid++
			line = append(line, `,"subject":`...)
			line, _ = appendJSONString(line, m.Subject)
			line = append(line, `,"raw":`...)
			line, _ = appendJSONString(line, string(m.Data))
			line = append(line, '}')
		}
		line = append(line, '\n')
		n.commits++
		_, err := w.Write(line)
		return err
	})
	return n, err
}

func appendJSONString(b []byte, s string) ([]byte, error) {
	q, err := json.Marshal(s)
	return append(b, q...), err
}

// recordedAt finds metadata.recorded_at in a stored commit. The envelope
// writes metadata after the events, so its key is the last "metadata"
// object key in the document; anything unusual is decoded in full.
func recordedAt(data []byte) (time.Time, bool) {
	const metaKey, atKey = `"metadata":{`, `"recorded_at":"`
	if i := bytes.LastIndex(data, []byte(metaKey)); i >= 0 {
		rest := data[i+len(metaKey):]
		if j := bytes.Index(rest, []byte(atKey)); j >= 0 {
			rest = rest[j+len(atKey):]
			if k := bytes.IndexByte(rest, '"'); k >= 0 {
				if t, err := time.Parse(time.RFC3339Nano, string(rest[:k])); err == nil {
					return t, true
				}
			}
		}
	}
	c, err := events.Unmarshal(data)
	if err != nil {
		return time.Time{}, false
	}
	return c.Metadata.RecordedAt, true
}

// parseExportPositions reads --after: the positions export printed when
// it ended, such as ORDERS:120,INVENTORY:40,PAYMENTS:33 (each stream
// resumes after its own; a stream not named starts from its beginning).
func parseExportPositions(s string, streamOf map[string]string) (map[string]uint64, error) {
	out := map[string]uint64{}
	for _, p := range strings.Split(s, ",") {
		name, num, ok := strings.Cut(strings.TrimSpace(p), ":")
		seq, err := strconv.ParseUint(num, 10, 64)
		_, dup := out[name]
		if !ok || err != nil || streamOf[name] == "" || num[0] == '+' || dup {
			return nil, usagef("bad --after %q: want the positions export printed, such as ORDERS:120,INVENTORY:40 (streams of the exported types, each once)", s)
		}
		out[name] = seq
	}
	return out, nil
}

func cmdExport(ctx context.Context, e env, args []string) error {
	fs := flag.NewFlagSet("export", flag.ContinueOnError)
	var lf logFlags
	lf.register(fs, e)
	typ := fs.String("type", "", "export only this aggregate type: order, inventory or payment")
	sinceFlag := fs.String("since", "", "only commits recorded at or after this RFC 3339 time")
	untilFlag := fs.String("until", "", "only commits recorded before this RFC 3339 time")
	afterFlag := fs.String("after", "", "resume after these positions (as export printed them when it ended)")
	if err := parseFlagsOnly(fs, args); err != nil {
		return err
	}
	types, err := typesArg(*typ)
	if err != nil {
		return err
	}
	var f exportFilter
	if *sinceFlag != "" {
		if f.since, err = parseTime("--since", *sinceFlag); err != nil {
			return err
		}
	}
	if *untilFlag != "" {
		if f.until, err = parseTime("--until", *untilFlag); err != nil {
			return err
		}
	}
	if !f.since.IsZero() && !f.until.IsZero() && !f.since.Before(f.until) {
		return usagef("--since %s is not before --until %s", *sinceFlag, *untilFlag)
	}
	streamOf := map[string]string{}
	for _, t := range types {
		name, err := streams.StreamOf(t)
		if err != nil {
			return err
		}
		streamOf[name] = t
	}
	after := map[string]uint64{}
	if *afterFlag != "" {
		if after, err = parseExportPositions(*afterFlag, streamOf); err != nil {
			return err
		}
	}
	store, closeStore, err := lf.openStore(ctx)
	if err != nil {
		return err
	}
	defer closeStore()

	w := bufio.NewWriterSize(e.stdout, 256<<10)
	var total exportCount
	var reached []string // where each stream's export got to
	for _, t := range types {
		stream, _ := streams.StreamOf(t)
		last, err := store.LastSeq(ctx, t)
		if err == nil {
			bar := newProgress(e, "export "+t, last-min(after[stream], last))
			var n exportCount
			n, err = exportStream(ctx, store, t, after[stream], f, w, bar)
			bar.finish()
			total.commits += n.commits
			total.invalid += n.invalid
			reached = append(reached, fmt.Sprintf("%s:%d", stream, n.last))
		}
		if err != nil {
			_ = w.Flush()
			if len(reached) > 0 {
				return fmt.Errorf("%w (%d commit(s) written; resume with --after %s)", err, total.commits, strings.Join(reached, ","))
			}
			return err
		}
	}
	if err := w.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(e.stderr, "exported %d commit(s); to export what follows later: --after %s\n", total.commits, strings.Join(reached, ","))
	if total.invalid > 0 {
		return fmt.Errorf("%w: %d message(s) are not commits and were written as raw (see orderctl verify)", errCheckFailed, total.invalid)
	}
	return nil
}
