package main

import (
	"context"
	gosql "database/sql"
	"fmt"

	"github.com/google/uuid"
	hes "github.com/hallgren/eventsourcing"
	hagg "github.com/hallgren/eventsourcing/aggregate"
	hsql "github.com/hallgren/eventsourcing/eventstore/sql"
	"github.com/jackc/pgx/v5/pgxpool"
	_ "github.com/lib/pq" // hallgren's Postgres store is database/sql; its README uses lib/pq
	gagg "github.com/modernice/goes/aggregate"
	"github.com/modernice/goes/aggregate/repository"
	"github.com/modernice/goes/backend/postgres"
	"github.com/modernice/goes/codec"
	"github.com/modernice/goes/event"
)

// poolSize is each PostgreSQL peer's connection pool: one connection per
// writer at 16 writers, so no writer waits for a connection.
const poolSize = 16

// walStats reads PostgreSQL's cumulative WAL fsyncs, for commits per
// fsync: how much PostgreSQL's own group commit gathered.
type walStats func(ctx context.Context) (syncs int64, err error)

// --- goes (github.com/modernice/goes, backend/postgres) ---

const goesItemAdded = "order.line_added"

// goesOrder is the order aggregate as goes writes one.
type goesOrder struct {
	*gagg.Base
	lines int
}

func newGoesOrder(id uuid.UUID) *goesOrder {
	o := &goesOrder{Base: gagg.New("order", id)}
	event.ApplyWith(o, func(event.Of[lineAdded]) { o.lines++ }, goesItemAdded)
	return o
}

type goesStore struct {
	pool  *pgxpool.Pool
	repo  *repository.Repository
	wal   walStats
	sync0 int64
}

// openGoes opens goes' PostgreSQL event store on the database at url,
// whose table and indexes it creates.
func openGoes(ctx context.Context, url string) (*goesStore, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, err
	}
	cfg.MaxConns = poolSize
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	reg := codec.New()
	codec.Register[lineAdded](reg, goesItemAdded)
	es := postgres.NewEventStore(reg, postgres.Pool(pool))
	if err := es.Connect(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("goes: connect: %w", err)
	}
	s := &goesStore{pool: pool, repo: repository.New(es)}
	s.wal = func(ctx context.Context) (n int64, err error) {
		err = pool.QueryRow(ctx, "SELECT wal_sync FROM pg_stat_wal").Scan(&n)
		return n, err
	}
	return s, nil
}

func (s *goesStore) Name() string { return "goes" }

func (s *goesStore) Reset(ctx context.Context) error {
	for _, q := range []string{"TRUNCATE events", "CHECKPOINT"} {
		if _, err := s.pool.Exec(ctx, q); err != nil {
			return fmt.Errorf("%s: %w", q, err)
		}
	}
	var err error
	s.sync0, err = s.wal(ctx)
	return err
}

func (s *goesStore) NewAggregate() aggregate {
	return &goesAggregate{s: s, o: newGoesOrder(uuid.New())}
}

func (s *goesStore) Reload(ctx context.Context, a aggregate) (aggregate, error) {
	o := newGoesOrder(a.(*goesAggregate).o.ID)
	if err := s.repo.Fetch(ctx, o); err != nil {
		return nil, err
	}
	if o.lines != o.AggregateVersion() {
		return nil, fmt.Errorf("goes: applied %d events, version %d", o.lines, o.AggregateVersion())
	}
	return &goesAggregate{s: s, o: o}, nil
}

func (s *goesStore) Check(ctx context.Context, _, events int64) error {
	var n int64
	if err := s.pool.QueryRow(ctx, "SELECT count(*) FROM events").Scan(&n); err != nil {
		return err
	}
	if n != events {
		return fmt.Errorf("goes: %d events stored, %d acknowledged", n, events)
	}
	return nil
}

func (s *goesStore) fsyncs(ctx context.Context) (int64, error) {
	n, err := s.wal(ctx)
	return n - s.sync0, err
}

func (s *goesStore) Close() { s.pool.Close() }

type goesAggregate struct {
	s *goesStore
	o *goesOrder
}

func (a *goesAggregate) Version() int { return a.o.AggregateVersion() }

// Append records k events and saves them with the repository: goes checks
// that their versions follow the aggregate's and inserts them in one
// transaction, one INSERT each; its unique index on (aggregate id, name,
// version) refuses a stale version.
func (a *goesAggregate) Append(ctx context.Context, k int) error {
	for range k {
		gagg.Next(a.o, goesItemAdded, newLine(a.o.ID.String(), a.o.CurrentVersion()+1))
	}
	return a.s.repo.Save(ctx, a.o)
}

// --- hallgren (github.com/hallgren/eventsourcing, eventstore/sql) ---

// LineAdded is the event type as hallgren registers it (by Go type name).
type LineAdded lineAdded

// Order is the order aggregate as hallgren writes one (its aggregate type
// is the Go type name).
type Order struct {
	hagg.Root
	lines int
}

func (o *Order) Transition(e hes.Event) {
	if _, ok := e.Data().(*LineAdded); ok {
		o.lines++
	}
}

func (o *Order) Register(r hagg.RegisterFunc) { r(&LineAdded{}) }

type hallgrenStore struct {
	db    *gosql.DB
	es    *hsql.Postgres
	wal   walStats
	sync0 int64
}

// openHallgren opens hallgren's PostgreSQL event store (database/sql with
// lib/pq) on the database at url, whose table it creates.
func openHallgren(ctx context.Context, url string) (*hallgrenStore, error) {
	db, err := gosql.Open("postgres", url)
	if err != nil {
		return nil, err
	}
	// database/sql keeps 2 idle connections by default: with 16 writers
	// most transactions would open a new one.
	db.SetMaxOpenConns(poolSize)
	db.SetMaxIdleConns(poolSize)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("hallgren: %w", err)
	}
	es, err := hsql.NewPostgres(db)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("hallgren: %w", err)
	}
	hagg.Register(&Order{})
	s := &hallgrenStore{db: db, es: es}
	s.wal = func(ctx context.Context) (n int64, err error) {
		err = db.QueryRowContext(ctx, "SELECT wal_sync FROM pg_stat_wal").Scan(&n)
		return n, err
	}
	return s, nil
}

func (s *hallgrenStore) Name() string { return "hallgren" }

func (s *hallgrenStore) Reset(ctx context.Context) error {
	for _, q := range []string{"TRUNCATE events RESTART IDENTITY", "CHECKPOINT"} {
		if _, err := s.db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("%s: %w", q, err)
		}
	}
	var err error
	s.sync0, err = s.wal(ctx)
	return err
}

func (s *hallgrenStore) NewAggregate() aggregate {
	o := &Order{}
	if err := o.SetID(uuid.NewString()); err != nil {
		panic(err) // only for an empty id
	}
	return &hallgrenAggregate{s: s, o: o}
}

func (s *hallgrenStore) Reload(ctx context.Context, a aggregate) (aggregate, error) {
	o := &Order{}
	if err := hagg.Load(ctx, s.es, a.(*hallgrenAggregate).o.ID(), o); err != nil {
		return nil, err
	}
	if o.lines != int(o.Version()) {
		return nil, fmt.Errorf("hallgren: applied %d events, version %d", o.lines, o.Version())
	}
	return &hallgrenAggregate{s: s, o: o}, nil
}

func (s *hallgrenStore) Check(ctx context.Context, _, events int64) error {
	var n int64
	if err := s.db.QueryRowContext(ctx, "SELECT count(*) FROM events").Scan(&n); err != nil {
		return err
	}
	if n != events {
		return fmt.Errorf("hallgren: %d events stored, %d acknowledged", n, events)
	}
	return nil
}

func (s *hallgrenStore) fsyncs(ctx context.Context) (int64, error) {
	n, err := s.wal(ctx)
	return n - s.sync0, err
}

func (s *hallgrenStore) Close() { s.es.Close() }

type hallgrenAggregate struct {
	s *hallgrenStore
	o *Order
}

func (a *hallgrenAggregate) Version() int { return int(a.o.Version()) }

// Append records k events and saves them with aggregate.Save: in one
// transaction the store reads the aggregate's last version, refuses the
// commit unless the first new event follows it, and inserts the events
// one INSERT each (a unique (id, type, version) backs the check).
func (a *hallgrenAggregate) Append(_ context.Context, k int) error {
	for range k {
		e := LineAdded(newLine(a.o.ID(), int(a.o.Version())+1))
		hagg.TrackChange(a.o, &e)
	}
	return hagg.Save(a.s.es, a.o)
}
