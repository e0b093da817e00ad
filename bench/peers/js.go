package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ordo-shop/ordo/eventlog"
	"github.com/ordo-shop/ordo/events"
	"github.com/ordo-shop/ordo/internal/local/natsembed"
	"github.com/ordo-shop/ordo/streams"
)

// jsServer is an embedded nats-server with JetStream that fsyncs every
// write before acknowledging it (orderd's default), started afresh for
// every run under dir so that each run begins with empty streams, as the
// PostgreSQL peers begin with an empty table.
type jsServer struct {
	dir string
	n   int
	ns  *server.Server
	nc  *nats.Conn
}

// restart stops the current server, if any, deletes its store, and
// starts an empty one with a client connected in process (no TCP), as
// orderd's local default connects.
func (j *jsServer) restart() error {
	j.stop()
	j.n++
	store := filepath.Join(j.dir, strconv.Itoa(j.n))
	ns, err := natsembed.Start(natsembed.Options{StoreDir: store, SyncAlways: true})
	if err != nil {
		return err
	}
	nc, err := natsembed.Connect(ns)
	if err != nil {
		ns.Shutdown()
		return err
	}
	j.ns, j.nc = ns, nc
	return nil
}

func (j *jsServer) stop() {
	if j.ns == nil {
		return
	}
	j.nc.Close()
	j.ns.Shutdown()
	j.ns.WaitForShutdown()
	_ = os.RemoveAll(filepath.Join(j.dir, strconv.Itoa(j.n)))
	j.ns, j.nc = nil, nil
}

// streamMsgs returns how many messages stream holds.
func (j *jsServer) streamMsgs(ctx context.Context, stream string) (uint64, error) {
	js, err := jetstream.New(j.nc)
	if err != nil {
		return 0, err
	}
	st, err := js.Stream(ctx, stream)
	if err != nil {
		return 0, err
	}
	info, err := st.Info(ctx)
	if err != nil {
		return 0, err
	}
	return info.State.Msgs, nil
}

// --- Ordo: streams.Store.Append through the port, commits signed ---

type ordoStore struct {
	srv    jsServer
	log    eventlog.AggregateLog // a *streams.Store, seen through the port
	signer events.CommitSigner   // nil for ordo-unsigned
}

// openOrdo opens Ordo's store; signed is what orderd does, unsigned
// ("ordo-unsigned", not run by default) shows what signing costs here.
func openOrdo(dir string, signed bool) (*ordoStore, error) {
	s := &ordoStore{srv: jsServer{dir: dir}}
	if !signed {
		return s, nil
	}
	priv, err := events.GenerateSigningKey()
	if err != nil {
		return nil, err
	}
	signer, err := events.NewEd25519Signer(priv)
	if err != nil {
		return nil, err
	}
	s.signer = signer
	return s, nil
}

func (s *ordoStore) Name() string {
	if s.signer == nil {
		return "ordo-unsigned"
	}
	return "ordo"
}

// Reset starts an empty server and creates and opens the log on it as
// orderd's local default does on its first start (streams.Init, then
// streams.Open, default configuration: 16 partitions, one replica).
func (s *ordoStore) Reset(ctx context.Context) error {
	if err := s.srv.restart(); err != nil {
		return err
	}
	if _, err := streams.Init(ctx, s.srv.nc, streams.Config{}); err != nil {
		return err
	}
	st, err := streams.Open(ctx, s.srv.nc, streams.Config{})
	if err != nil {
		return err
	}
	s.log = st
	return nil
}

func (s *ordoStore) NewAggregate() aggregate {
	return &ordoAggregate{s: s, id: uuid.NewString()}
}

// Reload reads the aggregate's commits back with Load and checks their
// versions and hash chain, as the command handler does when it loads.
func (s *ordoStore) Reload(ctx context.Context, a aggregate) (aggregate, error) {
	id := a.(*ordoAggregate).id
	recs, err := s.log.Load(ctx, eventlog.TypeOrder, id, 0)
	if err != nil {
		return nil, err
	}
	b := &ordoAggregate{s: s, id: id}
	for _, r := range recs {
		c := r.Commit
		if c.Version != b.version+1 || c.PrevHash != b.hash {
			return nil, fmt.Errorf("ordo: %s: commit at seq %d breaks the chain", id, r.Seq)
		}
		b.version, b.seq, b.hash = c.LastVersion(), r.Seq, c.Hash
	}
	return b, nil
}

func (s *ordoStore) Check(ctx context.Context, commits, _ int64) error {
	stream, err := streams.StreamOf(eventlog.TypeOrder)
	if err != nil {
		return err
	}
	n, err := s.srv.streamMsgs(ctx, stream)
	if err != nil {
		return err
	}
	if int64(n) != commits {
		return fmt.Errorf("ordo: %d commits stored, %d acknowledged", n, commits)
	}
	return nil
}

func (s *ordoStore) Close() { s.srv.stop() }

type ordoAggregate struct {
	s       *ordoStore
	id      string
	version uint64 // of the last stored event
	seq     uint64 // stream sequence of the last stored commit
	hash    string // of the last stored commit
}

func (a *ordoAggregate) Version() int { return int(a.version) }

// Append builds one commit of k events as the command handler builds the
// commit a decision produced (a random commit id, who and why, the time,
// each event's data as JSON), seals and signs it (Ed25519, as orderd
// signs every commit), and appends it through the port with the
// aggregate's last stream sequence as the expected one.
func (a *ordoAggregate) Append(ctx context.Context, k int) error {
	c, err := ordoCommit(a.id, a.version, a.hash, k, a.s.signer)
	if err != nil {
		return err
	}
	res, err := a.s.log.Append(ctx, c, a.seq)
	if err != nil {
		return err
	}
	a.version, a.seq, a.hash = c.LastVersion(), res.Seq, c.Hash
	return nil
}

// ordoCommit builds, seals and signs the commit of k events after version
// of aggregate id, whose last commit hashed to prevHash.
func ordoCommit(id string, version uint64, prevHash string, k int, signer events.CommitSigner) (*events.Commit, error) {
	cid := commandID()
	c := &events.Commit{
		CommitID:      cid,
		AggregateType: eventlog.TypeOrder,
		AggregateID:   id,
		Version:       version + 1,
		Metadata: events.Metadata{
			CorrelationID: cid,
			CausationID:   cid,
			Actor:         "customer:" + id[:8],
			RecordedAt:    time.Now().UTC(),
		},
		Events: make([]events.Event, 0, k),
	}
	for i := range k {
		data, err := json.Marshal(newLine(id, int(version)+i+1))
		if err != nil {
			return nil, err
		}
		c.Events = append(c.Events, events.Event{Type: goesItemAdded, SchemaVersion: 1, Data: data})
	}
	if err := c.SealSigned(prevHash, signer); err != nil {
		return nil, err
	}
	return c, nil
}

// commandID is a random command id, as the command handler makes one for
// a request without an idempotency key.
func commandID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// --- raw JetStream: the floor under Ordo's append ---

// rawStore publishes, per commit, a fixed message as large as Ordo's
// signed commit of as many events, with the two headers Ordo's append
// sends (message id, expected last subject sequence), to a stream set up
// like ORDERS. It does no encoding, hashing or signing: what is left is
// the server's round trip and fsync.
type rawStore struct {
	srv      jsServer
	js       jetstream.JetStream
	payloads map[int][]byte // by events per commit
	// spread is how many streams the aggregates are dealt over (1 for
	// raw-js; raw-js-<n> uses n): each stream stores and fsyncs its
	// messages on its own goroutine, so this shows what JetStream itself
	// does when one log is spread over several streams.
	spread int
	next   int
}

const rawStream = "RAW"

// rawStreamName is the i-th stream of a spread raw store.
func (s *rawStore) streamName(i int) string {
	if s.spread == 1 {
		return rawStream
	}
	return rawStream + strconv.Itoa(i)
}

func openRaw(dir string, ks []int, spread int) (*rawStore, error) {
	priv, err := events.GenerateSigningKey()
	if err != nil {
		return nil, err
	}
	signer, err := events.NewEd25519Signer(priv)
	if err != nil {
		return nil, err
	}
	s := &rawStore{srv: jsServer{dir: dir}, payloads: map[int][]byte{}, spread: max(spread, 1)}
	for _, k := range ks {
		c, err := ordoCommit(uuid.NewString(), 0, "", k, signer)
		if err != nil {
			return nil, err
		}
		if s.payloads[k], err = events.Marshal(c); err != nil {
			return nil, err
		}
	}
	return s, nil
}

func (s *rawStore) Name() string {
	if s.spread == 1 {
		return "raw-js"
	}
	return "raw-js-" + strconv.Itoa(s.spread)
}

func (s *rawStore) Reset(ctx context.Context) error {
	if err := s.srv.restart(); err != nil {
		return err
	}
	js, err := jetstream.New(s.srv.nc)
	if err != nil {
		return err
	}
	for i := range s.spread {
		if _, err := js.CreateStream(ctx, jetstream.StreamConfig{
			Name: s.streamName(i), Subjects: []string{s.subjectPrefix(i) + "*"}, Storage: jetstream.FileStorage, Replicas: 1,
			MaxMsgs: -1, MaxBytes: -1, MaxMsgsPerSubject: -1, Discard: jetstream.DiscardNew,
			Duplicates: streams.DefaultDuplicateWindow, AllowDirect: true, DenyDelete: true, DenyPurge: true,
		}); err != nil {
			return err
		}
	}
	s.js = js
	return nil
}

// subjectPrefix is the subject prefix of the i-th stream.
func (s *rawStore) subjectPrefix(i int) string {
	if s.spread == 1 {
		return "raw."
	}
	return "raw" + strconv.Itoa(i) + "."
}

// NewAggregate deals the aggregates over the streams in turn.
func (s *rawStore) NewAggregate() aggregate {
	id := uuid.NewString()
	i := s.next % s.spread
	s.next++
	return &rawAggregate{s: s, stream: s.streamName(i), subject: s.subjectPrefix(i) + id, id: id}
}

func (s *rawStore) Reload(ctx context.Context, a aggregate) (aggregate, error) {
	r := a.(*rawAggregate)
	st, err := s.js.Stream(ctx, r.stream)
	if err != nil {
		return nil, err
	}
	m, err := st.GetLastMsgForSubject(ctx, r.subject)
	if err != nil {
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return &rawAggregate{s: s, stream: r.stream, subject: r.subject, id: r.id}, nil
		}
		return nil, err
	}
	// The message id is "<id>-<version of its last event>".
	mid := m.Header.Get(jetstream.MsgIDHeader)
	v, err := strconv.Atoi(mid[strings.LastIndexByte(mid, '-')+1:])
	if err != nil {
		return nil, fmt.Errorf("raw: message id %q: %w", mid, err)
	}
	return &rawAggregate{s: s, stream: r.stream, subject: r.subject, id: r.id, version: v, seq: m.Sequence}, nil
}

func (s *rawStore) Check(ctx context.Context, commits, _ int64) error {
	var n uint64
	for i := range s.spread {
		m, err := s.srv.streamMsgs(ctx, s.streamName(i))
		if err != nil {
			return err
		}
		n += m
	}
	if int64(n) != commits {
		return fmt.Errorf("raw: %d messages stored, %d acknowledged", n, commits)
	}
	return nil
}

func (s *rawStore) Close() { s.srv.stop() }

type rawAggregate struct {
	s                   *rawStore
	stream, subject, id string
	version             int
	seq                 uint64
}

func (a *rawAggregate) Version() int { return a.version }

func (a *rawAggregate) Append(ctx context.Context, k int) error {
	payload, ok := a.s.payloads[k]
	if !ok {
		return fmt.Errorf("raw: no payload for %d events", k)
	}
	v := a.version + k
	ack, err := a.s.js.Publish(ctx, a.subject, payload,
		jetstream.WithMsgID(a.id+"-"+strconv.Itoa(v)), jetstream.WithExpectLastSequencePerSubject(a.seq))
	if err != nil {
		return err
	}
	a.version, a.seq = v, ack.Sequence
	return nil
}
