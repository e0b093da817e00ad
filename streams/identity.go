package streams

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ordo-shop/ordo/eventlog"
)

// A log is Ordo's five streams: ORDERS, INVENTORY and PAYMENTS (the
// commits) and DLQ and TIMERS (the dead letters and durable timers of the
// process managers, which belong to the log: a dead letter is a money
// event nobody handled yet, a timer a payment deadline). [Init] creates
// a log and gives it an identity, a random id recorded in every stream's
// metadata; [Open] only ever opens one, and refuses streams that are
// missing or belong to another log. So a deleted log is noticed instead
// of being silently replaced by an empty one.

// Stream metadata keys of a log's identity.
const (
	// LogIDKey holds the log's id (32 hex digits) in every stream.
	LogIDKey = "ordo.log_id"
	// CreatedKey holds when the log was created, or given its id
	// (RFC 3339, UTC), in every stream.
	CreatedKey = "ordo.created"
	// SignedFromKey holds, in each commit stream, the first stream
	// sequence from which every commit must be signed: "1" for a log
	// created with identity, the next sequence at the time for an older
	// log given one.
	SignedFromKey = "ordo.signed_from"
)

// logStreams are the names of the log's streams in the order they are
// created: ORDERS first, so that two Inits racing on an empty server meet
// on it and one of them gives way before creating anything.
var logStreams = []string{eventlog.StreamOrders, eventlog.StreamInventory, eventlog.StreamPayments, DLQStream, TimersStream}

// LogStreams returns the names of the log's streams: ORDERS, INVENTORY,
// PAYMENTS, DLQ, TIMERS.
func LogStreams() []string { return slices.Clone(logStreams) }

// LogInfo describes a log.
type LogInfo struct {
	// ID is the log's id; empty for a log created before logs had one,
	// which Open still opens and Init adopts.
	ID string
	// Created is when the log was created or adopted (zero without ID).
	Created time.Time
	// Partitions and Replicas are those of the ORDERS stream.
	Partitions, Replicas int
	// What Init did: Created a new log (New), gave an existing log its
	// id (Adopted), and which streams it added to an existing log
	// (Added: a DLQ or TIMERS an older log did not have yet).
	New, Adopted bool
	Added        []string
}

// survey is what the server has of a log.
type survey struct {
	configs map[string]jetstream.StreamConfig // by stream name, the ones that exist
	lastSeq map[string]uint64
}

func (v survey) has(name string) bool { _, ok := v.configs[name]; return ok }

// missing returns the names among names the server does not have.
func (v survey) missing(names ...string) []string {
	var out []string
	for _, n := range names {
		if !v.has(n) {
			out = append(out, n)
		}
	}
	return out
}

// ids returns the distinct non-empty log ids of the streams, and the
// streams without one.
func (v survey) ids() (ids []string, without []string) {
	for _, n := range logStreams {
		sc, ok := v.configs[n]
		if !ok {
			continue
		}
		switch id := sc.Metadata[LogIDKey]; {
		case id == "":
			without = append(without, n)
		case !slices.Contains(ids, id):
			ids = append(ids, id)
		}
	}
	return ids, without
}

func surveyLog(ctx context.Context, js jetstream.JetStream) (survey, error) {
	v := survey{configs: map[string]jetstream.StreamConfig{}, lastSeq: map[string]uint64{}}
	for _, n := range logStreams {
		st, err := js.Stream(ctx, n)
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			continue
		}
		if err != nil {
			return v, fmt.Errorf("streams: stream %s: %w", n, err)
		}
		info := st.CachedInfo()
		v.configs[n] = info.Config
		v.lastSeq[n] = info.State.LastSeq
	}
	return v, nil
}

// commitStreams are the names of ORDERS, INVENTORY, PAYMENTS.
func commitStreams() []string {
	out := make([]string, len(kindOrder))
	for i, t := range kindOrder {
		out[i] = kinds[t].stream
	}
	return out
}

func kindOfStream(name string) (aggKind, bool) {
	for _, k := range kinds {
		if k.stream == name {
			return k, true
		}
	}
	return aggKind{}, false
}

// checkConfigs checks the configuration of every stream the server has
// and returns the partition count of the commit streams.
func (v survey) checkConfigs() (int, error) {
	partitions := 0
	for _, n := range logStreams {
		sc, ok := v.configs[n]
		if !ok {
			continue
		}
		var err error
		switch n {
		case DLQStream:
			err = checkDLQ(sc)
		case TimersStream:
			err = checkTimers(sc)
		default:
			k, _ := kindOfStream(n)
			var p int
			if p, err = checkStream(k, sc); err == nil {
				if partitions != 0 && p != partitions {
					return 0, fmt.Errorf("streams: %w: stream %s has %d partitions, another stream %d", ErrStreamConfig, n, p, partitions)
				}
				partitions = p
			}
		}
		if err != nil {
			return 0, err
		}
	}
	return partitions, nil
}

// info describes the log the survey found (ids already checked).
func (v survey) info(partitions int) LogInfo {
	orders := v.configs[kinds[eventlog.TypeOrder].stream]
	li := LogInfo{ID: orders.Metadata[LogIDKey], Partitions: partitions, Replicas: max(orders.Replicas, 1)}
	if t, err := time.Parse(time.RFC3339, orders.Metadata[CreatedKey]); err == nil {
		li.Created = t
	}
	return li
}

// openLog checks that the server holds one whole log (the expected one,
// if expect is set) and describes it. A log without an id (made before
// logs had one) passes, DLQ and TIMERS then being optional: they were
// made when first needed.
func openLog(v survey, expect string) (LogInfo, error) {
	if len(v.configs) == 0 {
		return LogInfo{}, noLogError(expect)
	}
	partitions, err := v.checkConfigs()
	if err != nil {
		return LogInfo{}, err
	}
	ids, without := v.ids()
	if err := idError(ids, without, expect); err != nil {
		return LogInfo{}, err
	}
	required := commitStreams()
	if len(ids) == 1 {
		required = logStreams
	}
	if missing := v.missing(required...); len(missing) > 0 {
		return LogInfo{}, missingError(missing, v)
	}
	return v.info(partitions), nil
}

// idError is the error of streams whose ids are not one log's.
func idError(ids, without []string, expect string) error {
	switch {
	case len(ids) > 1:
		return fmt.Errorf("streams: %w: the streams carry different log ids (%s): they come from different logs",
			eventlog.ErrLogMismatch, strings.Join(ids, ", "))
	case len(ids) == 1 && len(without) > 0:
		return fmt.Errorf("streams: %w: streams %s have no log id while the others carry %s: "+
			"giving the log its id was interrupted; run `orderctl init` to finish it", eventlog.ErrLogMismatch, strings.Join(without, ", "), ids[0])
	case expect != "" && len(ids) == 0:
		return fmt.Errorf("streams: %w: expected log %s, but the streams carry no log id (a log from before log ids: run `orderctl init` to give it one)",
			eventlog.ErrLogMismatch, expect)
	case expect != "" && ids[0] != expect:
		return fmt.Errorf("streams: %w: expected log %s, the streams are log %s: this NATS holds another log "+
			"(a wrong ORDO_NATS_URL, or the log was destroyed and created anew)", eventlog.ErrLogMismatch, expect, ids[0])
	}
	return nil
}

func noLogError(expect string) error {
	if expect != "" {
		return fmt.Errorf("streams: %w (expected log %s: none of its streams %s exists; it was destroyed, or this is the wrong server)",
			eventlog.ErrNoLog, expect, strings.Join(logStreams, ", "))
	}
	return fmt.Errorf("streams: %w (none of the streams %s exists): create one with `orderctl init`",
		eventlog.ErrNoLog, strings.Join(logStreams, ", "))
}

// missingError names the streams a destroyed log lacks.
func missingError(missing []string, v survey) error {
	ids, _ := v.ids()
	which := "the log"
	if len(ids) == 1 {
		which = "log " + ids[0]
	}
	return fmt.Errorf("streams: %w: the server has no stream %s of %s while its other streams exist: "+
		"the log was destroyed (in part); restore it from a backup. Streams are created only with the log, never in place of a lost one",
		eventlog.ErrStreamMissing, strings.Join(missing, ", "), which)
}

// Init creates a log on nc's server, or checks and completes the one it
// has, and describes it. It is the only call that creates streams:
// orderd calls it on the local default's first start, `orderctl init` for
// a deployment on its own NATS.
//
// On a server with none of the log's streams it creates all five with a
// new random id (LogInfo.New). Every stream uses file storage, cfg's
// replicas, direct gets and no limits; the commit streams also cfg's
// duplicate window, deny deletes and purges, and record cfg.Partitions
// in the metadata key "ordo.partitions". With cfg.LogID set Init creates
// nothing and fails with [eventlog.ErrNoLog]: that log was expected to exist.
//
// On a server with a log it checks every stream as Open does, and is
// idempotent: a log with an id is left as it is. An older log without one
// is adopted: it gets a new id (and "ordo.signed_from" set to each commit
// stream's next sequence, unless the stream records one already) by
// metadata-only stream updates, and its DLQ
// and TIMERS are created if it has none yet. A log with an id that lacks
// its DLQ or TIMERS is refused with [eventlog.ErrStreamMissing] (dead letters and
// timers were lost) unless cfg.RecreateLost is set. A log missing a
// commit stream is always refused.
func Init(ctx context.Context, nc *nats.Conn, cfg Config) (LogInfo, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return LogInfo{}, err
	}
	if nc == nil {
		return LogInfo{}, errors.New("streams: init: nil connection")
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return LogInfo{}, fmt.Errorf("streams: init: %w", err)
	}
	v, err := surveyLog(ctx, js)
	if err != nil {
		return LogInfo{}, err
	}
	if len(v.configs) == 0 {
		if cfg.LogID != "" {
			return LogInfo{}, noLogError(cfg.LogID)
		}
		return createLog(ctx, js, cfg)
	}
	partitions, err := v.checkConfigs()
	if err != nil {
		return LogInfo{}, err
	}
	if missing := v.missing(commitStreams()...); len(missing) > 0 {
		return LogInfo{}, missingError(missing, v)
	}
	ids, without := v.ids()
	if len(ids) > 1 || (cfg.LogID != "" && len(ids) == 1 && ids[0] != cfg.LogID) {
		return LogInfo{}, idError(ids, nil, cfg.LogID)
	}
	if cfg.LogID != "" && len(ids) == 0 {
		return LogInfo{}, idError(nil, nil, cfg.LogID)
	}
	li := v.info(partitions)
	aux := v.missing(DLQStream, TimersStream)
	if len(ids) == 1 && len(without) == 0 && len(aux) > 0 && !cfg.RecreateLost {
		return LogInfo{}, fmt.Errorf("%w; to go on without what %s held, run `orderctl init --recreate-lost`",
			missingError(aux, v), strings.Join(aux, " and "))
	}

	// Adopt (or finish adopting) the log, and add what it lacks.
	id, created := "", time.Now().UTC().Truncate(time.Second)
	if len(ids) == 1 {
		id = ids[0]
		if t, err := time.Parse(time.RFC3339, v.configs[kinds[eventlog.TypeOrder].stream].Metadata[CreatedKey]); err == nil {
			created = t
		}
	} else if id, err = newLogID(); err != nil {
		return LogInfo{}, err
	}
	identity := map[string]string{LogIDKey: id, CreatedKey: created.Format(time.RFC3339)}
	for _, n := range without {
		sc := v.configs[n]
		sc.Metadata = maps.Clone(sc.Metadata)
		if sc.Metadata == nil {
			sc.Metadata = map[string]string{}
		}
		maps.Copy(sc.Metadata, identity)
		if _, ok := kindOfStream(n); ok {
			// A stream that records where signing began keeps it: giving
			// the log its id again must not move that boundary past
			// unsigned commits appended since (an id removed by hand).
			if _, recorded := sc.Metadata[SignedFromKey]; !recorded {
				sc.Metadata[SignedFromKey] = strconv.FormatUint(v.lastSeq[n]+1, 10)
			}
		}
		if _, err := js.UpdateStream(ctx, sc); err != nil {
			return LogInfo{}, fmt.Errorf("streams: init: record the log id in stream %s: %w", n, err)
		}
		li.Adopted = true
	}
	for _, n := range aux {
		if err := createStream(ctx, js, auxConfig(n, li.Replicas, identity)); err != nil {
			return LogInfo{}, err
		}
		li.Added = append(li.Added, n)
	}
	li.ID, li.Created = id, created
	return li, nil
}

func newLogID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("streams: new log id: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// createLog creates the five streams of a new log.
func createLog(ctx context.Context, js jetstream.JetStream, cfg Config) (LogInfo, error) {
	id, err := newLogID()
	if err != nil {
		return LogInfo{}, err
	}
	created := time.Now().UTC().Truncate(time.Second)
	identity := map[string]string{LogIDKey: id, CreatedKey: created.Format(time.RFC3339)}
	for _, t := range kindOrder {
		sc := streamConfig(kinds[t], cfg.Partitions, cfg)
		maps.Copy(sc.Metadata, identity)
		sc.Metadata[SignedFromKey] = "1"
		if err := createStream(ctx, js, sc); err != nil {
			return LogInfo{}, err
		}
	}
	for _, n := range []string{DLQStream, TimersStream} {
		if err := createStream(ctx, js, auxConfig(n, cfg.Replicas, identity)); err != nil {
			return LogInfo{}, err
		}
	}
	return LogInfo{ID: id, Created: created, Partitions: cfg.Partitions, Replicas: cfg.Replicas, New: true}, nil
}

func createStream(ctx context.Context, js jetstream.JetStream, sc jetstream.StreamConfig) error {
	_, err := js.CreateStream(ctx, sc)
	if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
		return fmt.Errorf("streams: init: stream %s was created by someone else meanwhile (another init?): run init again to check the log", sc.Name)
	}
	if err != nil {
		return fmt.Errorf("streams: init: create stream %s: %w", sc.Name, err)
	}
	return nil
}

// auxConfig is the configuration of the DLQ or TIMERS stream of a log.
func auxConfig(name string, replicas int, identity map[string]string) jetstream.StreamConfig {
	var sc jetstream.StreamConfig
	switch name {
	case DLQStream:
		sc = auxStreamConfig(DLQStream, "Ordo dead letters of the process managers, their redrives, and refused outside reports", "dlq.>", replicas)
	default:
		sc = auxStreamConfig(TimersStream, "Ordo durable timers: message schedules and the messages they fire", "timer.>", replicas)
		sc.AllowRollup = true
		sc.AllowMsgSchedules = true
	}
	sc.Metadata = maps.Clone(identity)
	return sc
}

// checkDLQ validates an existing DLQ stream.
func checkDLQ(got jetstream.StreamConfig) error {
	var problems []string
	if want := []string{"dlq.>"}; !slices.Equal(got.Subjects, want) {
		problems = append(problems, fmt.Sprintf("subjects %v, want %v", got.Subjects, want))
	}
	if got.DenyDelete {
		problems = append(problems, "denies deletes (a redriven dead letter is deleted)")
	}
	problems = append(problems, auxProblems(got)...)
	if len(problems) > 0 {
		return fmt.Errorf("streams: %w: stream %s exists but %s", ErrStreamConfig, DLQStream, strings.Join(problems, "; "))
	}
	return nil
}

// checkTimers validates an existing TIMERS stream.
func checkTimers(got jetstream.StreamConfig) error {
	var problems []string
	if want := []string{"timer.>"}; !slices.Equal(got.Subjects, want) {
		problems = append(problems, fmt.Sprintf("subjects %v, want %v", got.Subjects, want))
	}
	if !got.AllowMsgSchedules {
		problems = append(problems, "does not allow message schedules")
	}
	problems = append(problems, auxProblems(got)...)
	if len(problems) > 0 {
		return fmt.Errorf("streams: %w: stream %s exists but %s", ErrStreamConfig, TimersStream, strings.Join(problems, "; "))
	}
	return nil
}

// auxProblems are what would make DLQ or TIMERS lose what they hold.
func auxProblems(got jetstream.StreamConfig) []string {
	var problems []string
	if got.Storage != jetstream.FileStorage {
		problems = append(problems, "not file storage")
	}
	if got.Retention != jetstream.LimitsPolicy {
		problems = append(problems, fmt.Sprintf("retention %s, want limits", got.Retention))
	}
	if got.MaxMsgs > 0 || got.MaxBytes > 0 || got.MaxAge > 0 || got.MaxMsgsPerSubject > 0 {
		problems = append(problems, "has retention limits")
	}
	return problems
}
