package postgres

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/maphash"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ordo-shop/ordo/eventlog"
	"github.com/ordo-shop/ordo/projections"
	"github.com/ordo-shop/ordo/projections/orderlog"
)

// ReconcileOptions tune [Store.Reconcile].
type ReconcileOptions struct {
	// Progress, if set, is called after each batch of the log read with
	// the stream sequence read up to and the one the reconciliation
	// reads to.
	Progress func(done, total uint64)
}

// Reconcile compares the live version of the read model with the log:
// it folds the commits the read model has applied (those of partition p
// at or below p's checkpoint) with the projector's own fold and reports
// every row that is missing, extra or different, column by column.
// Timestamps compare as instants (to PostgreSQL's microsecond), jsonb
// columns as JSON values.
//
// The checkpoints and every row are read in one read-only REPEATABLE
// READ transaction, so a projector applying batches meanwhile causes no
// drift: what Reconcile reports is real. The transaction stays open
// while the log is read. Memory grows with the number of orders (their
// rows as the log says, and a digest of each stored line and timeline
// row), not with the number of events.
func (s *Store) Reconcile(ctx context.Context, src projections.LogReader, opts ReconcileOptions) (projections.Reconciliation, error) {
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return projections.Reconciliation{}, fmt.Errorf("order status: reconcile: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // read-only: nothing to undo
	r := &reconciler{st: s, tx: tx, src: src, opts: opts, seed: maphash.MakeSeed(), res: projections.Reconciliation{Projection: Name}}
	if err := r.run(ctx); err != nil {
		return projections.Reconciliation{}, fmt.Errorf("order status: reconcile: %w", err)
	}
	projections.SortDrifts(r.res.Drifts)
	return r.res, nil
}

// reconciler is the state of one [Store.Reconcile].
type reconciler struct {
	st     *Store
	tx     pgx.Tx
	src    projections.LogReader
	opts   ReconcileOptions
	schema string
	cps    []uint64
	// quarantined are the commits the projector set aside, unresolved.
	quarantined map[uint64]bool
	seed        maphash.Seed
	res         projections.Reconciliation

	// orders holds each order's row as the log says, lines and timeline
	// the digests of the stored rows.
	orders          map[string]*orderRow
	lines, timeline storedSums
	// badLines and badTimeline are the log's rows whose stored row has
	// another digest: compared column by column at the end.
	badLines    []lineRow
	badTimeline []timelineRow
}

func (r *reconciler) run(ctx context.Context) error {
	var v int
	if err := r.tx.QueryRow(ctx, "SELECT version FROM ordo.projection_versions WHERE projection = $1 AND state = 'live'", Name).Scan(&v); err != nil {
		return fmt.Errorf("live version: %w", err)
	}
	r.schema = versionSchema(v)
	r.res.Target = r.schema
	if err := r.readCheckpoints(ctx); err != nil {
		return err
	}
	if err := r.readQuarantine(ctx, v); err != nil {
		return err
	}
	if err := r.readSums(ctx); err != nil {
		return err
	}
	if err := r.foldLog(ctx); err != nil {
		return err
	}
	if err := r.compareOrders(ctx); err != nil {
		return err
	}
	if err := compareRows(ctx, r, &linesTable, r.lines, r.badLines); err != nil {
		return err
	}
	return compareRows(ctx, r, &timelineTable, r.timeline, r.badTimeline)
}

func (r *reconciler) drift(orderID, table, key, field, kind, log, store string) {
	r.res.Drifts = append(r.res.Drifts, projections.Drift{Projection: Name, OrderID: orderID, Table: table, Key: key,
		Field: field, Kind: kind, Log: log, Store: store})
}

// readQuarantine reads the live version's unresolved quarantined
// commits, in the same snapshot as the checkpoints.
func (r *reconciler) readQuarantine(ctx context.Context, v int) error {
	rows, err := r.tx.Query(ctx, "SELECT seq FROM ordo.projection_quarantine WHERE projection = $1 AND version = $2 AND state <> 'resolved'", Name, v)
	if err != nil {
		return fmt.Errorf("quarantine: %w", err)
	}
	r.quarantined = map[uint64]bool{}
	var seq int64
	_, err = pgx.ForEachRow(rows, []any{&seq}, func() error {
		r.quarantined[uint64(seq)] = true
		return nil
	})
	if err != nil {
		return fmt.Errorf("quarantine: %w", err)
	}
	return nil
}

func (r *reconciler) readCheckpoints(ctx context.Context) error {
	r.cps = make([]uint64, r.st.opts.Partitions)
	have := make([]bool, len(r.cps))
	rows, err := r.tx.Query(ctx, "SELECT partition, seq FROM "+r.schema+".checkpoints")
	if err != nil {
		return fmt.Errorf("checkpoints: %w", err)
	}
	var p int
	var seq int64
	if _, err := pgx.ForEachRow(rows, []any{&p, &seq}, func() error {
		if p < 0 || p >= len(r.cps) {
			return fmt.Errorf("%s.checkpoints has partition %d of %d", r.schema, p, len(r.cps))
		}
		r.cps[p], have[p] = uint64(seq), true
		return nil
	}); err != nil {
		return fmt.Errorf("checkpoints: %w", err)
	}
	for p, ok := range have {
		if !ok {
			return fmt.Errorf("%s.checkpoints has no row for partition %d", r.schema, p)
		}
	}
	r.res.Checkpoints = r.cps
	return nil
}

// storedSums holds a digest of each stored row of one table by order and
// key (line_no or version), so that the log's rows are compared without
// holding the stored ones.
type storedSums map[string][]keySum

type keySum struct {
	key  int64
	sum  uint64
	seen bool
}

// add records a row; rows come ordered by order and key.
func (m storedSums) add(id string, key int64, sum uint64) {
	m[id] = append(m[id], keySum{key: key, sum: sum})
}

// check marks the stored row of id and key as seen and reports whether
// there is one and whether its digest is sum.
func (m storedSums) check(id string, key int64, sum uint64) (found, same bool) {
	ks := m[id]
	i := sort.Search(len(ks), func(i int) bool { return ks[i].key >= key })
	if i == len(ks) || ks[i].key != key {
		return false, false
	}
	ks[i].seen = true
	return true, ks[i].sum == sum
}

// rowKey is a row of order_lines or order_timeline by its primary key.
type rowKey struct {
	id  string
	key int64
}

// unseen returns the stored rows no row of the log matched.
func (m storedSums) unseen() []rowKey {
	var out []rowKey
	for id, ks := range m {
		for _, k := range ks {
			if !k.seen {
				out = append(out, rowKey{id, k.key})
			}
		}
	}
	return out
}

const (
	lineColumns     = "order_id, line_no, sku, qty, unit_price, amount"
	timelineColumns = "order_id, version, seq, at, event_type, status, detail, commit_id, causation_id, correlation_id, actor"
)

func (l *lineRow) scanTargets() []any {
	return []any{&l.OrderID, &l.LineNo, &l.SKU, &l.Qty, &l.UnitPrice, &l.Amount}
}

func (t *timelineRow) scanTargets() []any {
	return []any{&t.OrderID, &t.Version, &t.Seq, &t.At, &t.EventType, &t.Status, &t.Detail, &t.CommitID, &t.CausationID, &t.CorrelationID, &t.Actor}
}

// readSums reads the digests of every stored line and timeline row.
func (r *reconciler) readSums(ctx context.Context) (err error) {
	if r.lines, err = readSums(ctx, r, &linesTable); err != nil {
		return err
	}
	r.timeline, err = readSums(ctx, r, &timelineTable)
	return err
}

// readSums reads the digest of every stored row of t.
func readSums[R any](ctx context.Context, r *reconciler, t *childTable[R]) (storedSums, error) {
	sums := storedSums{}
	var row R
	err := r.forEach(ctx, "SELECT "+t.columns+" FROM "+r.schema+"."+t.name+" ORDER BY order_id, "+t.keyCol, nil, t.scan(&row), func() error {
		k := t.key(&row)
		sums.add(k.id, k.key, t.sum(r, &row))
		r.res.Rows++
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", t.name, err)
	}
	return sums, nil
}

func (r *reconciler) forEach(ctx context.Context, sql string, args []any, scans []any, fn func() error) error {
	rows, err := r.tx.Query(ctx, sql, args...)
	if err != nil {
		return err
	}
	_, err = pgx.ForEachRow(rows, scans, fn)
	return err
}

// digest writes fields into a hash, each length-prefixed so that no two
// rows write the same bytes.
type digest struct{ h maphash.Hash }

func (d *digest) int(n int64) {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], uint64(n))
	d.h.Write(b[:])
}

func (d *digest) str(s string) {
	d.int(int64(len(s)))
	d.h.WriteString(s)
}

func (r *reconciler) newDigest() *digest {
	d := &digest{}
	d.h.SetSeed(r.seed)
	return d
}

func (r *reconciler) lineSum(l *lineRow) uint64 {
	d := r.newDigest()
	d.str(l.SKU)
	d.int(l.Qty)
	d.int(l.UnitPrice)
	d.int(l.Amount)
	return d.h.Sum64()
}

// timelineSum digests a timeline row with its time to the microsecond,
// as PostgreSQL stores it (a time it rounded instead differs here, and
// compares equal column by column).
func (r *reconciler) timelineSum(t *timelineRow) uint64 {
	d := r.newDigest()
	d.int(t.Seq)
	d.int(t.At.Truncate(time.Microsecond).UnixMicro())
	for _, s := range [...]string{t.EventType, t.Status, t.Detail, t.CommitID, t.CausationID, t.CorrelationID, t.Actor} {
		d.str(s)
	}
	return d.h.Sum64()
}

// foldLog folds the commits the read model has applied into the rows
// the log says it holds, checking the lines and timeline rows against
// the stored digests as they come.
func (r *reconciler) foldLog(ctx context.Context) error {
	last, err := r.src.LastSeq(ctx, eventlog.TypeOrder)
	if err != nil {
		return err
	}
	var until uint64
	for p, cp := range r.cps {
		if cp > last {
			r.drift("", "checkpoints", "partition="+strconv.Itoa(p), "seq", projections.DriftDiffers,
				"the log ends at "+strconv.FormatUint(last, 10), strconv.FormatUint(cp, 10))
		}
		until = max(until, min(cp, last))
	}
	r.orders = map[string]*orderRow{}
	batch := make([]*orderlog.Commit, 0, 1000)
	err = projections.ReadLog(ctx, r.src, eventlog.TypeOrder, until, func(recs []eventlog.RawRecord) error {
		batch = batch[:0]
		for _, rec := range recs {
			if r.quarantined[rec.Seq] {
				r.res.Quarantined++
				continue
			}
			c, err := r.st.decoder.Decode(rec)
			if err != nil {
				return err
			}
			p := r.src.Partition(c.AggregateID)
			if p < 0 || p >= len(r.cps) {
				return fmt.Errorf("seq %d: partition %d of %d", c.Seq, p, len(r.cps))
			}
			if c.Seq <= r.cps[p] {
				batch = append(batch, c)
			}
		}
		r.res.Commits += len(batch)
		ch, err := fold(batch, r.orders)
		if err != nil {
			return err
		}
		for _, o := range ch.orders {
			r.orders[o.OrderID] = o
		}
		checkRows(r, &linesTable, r.lines, ch.lines, &r.badLines)
		checkRows(r, &timelineTable, r.timeline, ch.timeline, &r.badTimeline)
		if r.opts.Progress != nil {
			r.opts.Progress(recs[len(recs)-1].Seq, until)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("fold the log: %w", err)
	}
	r.res.Orders = len(r.orders)
	return nil
}

// childTable describes a table of an order's rows (order_lines,
// order_timeline) for comparing its rows with the log's: by digest while
// the log is read, column by column where a digest differed.
type childTable[R any] struct {
	name, columns string
	// keyCol names a row among its order's rows; keyType is its SQL type.
	keyCol, keyType string
	cols            []column[R]
	key             func(*R) rowKey
	summary         func(*R) string
	scan            func(*R) []any
	sum             func(*reconciler, *R) uint64
}

var (
	linesTable = childTable[lineRow]{
		name: "order_lines", columns: lineColumns, keyCol: "line_no", keyType: "int4", cols: lineCols,
		key:     func(l *lineRow) rowKey { return rowKey{l.OrderID, int64(l.LineNo)} },
		summary: lineSummary, scan: (*lineRow).scanTargets, sum: (*reconciler).lineSum,
	}
	timelineTable = childTable[timelineRow]{
		name: "order_timeline", columns: timelineColumns, keyCol: "version", keyType: "int8", cols: timelineCols,
		key:     func(t *timelineRow) rowKey { return rowKey{t.OrderID, t.Version} },
		summary: timelineSummary, scan: (*timelineRow).scanTargets, sum: (*reconciler).timelineSum,
	}
)

// keyText names a row among its order's rows, such as "line_no=2".
func (t *childTable[R]) keyText(k rowKey) string {
	return t.keyCol + "=" + strconv.FormatInt(k.key, 10)
}

// checkRows checks the log's rows against the stored digests: a row
// with none is missing; one whose digest differs goes to bad, to be
// compared column by column by compareRows.
func checkRows[R any](r *reconciler, t *childTable[R], sums storedSums, rows []R, bad *[]R) {
	for i := range rows {
		row := &rows[i]
		k := t.key(row)
		found, same := sums.check(k.id, k.key, t.sum(r, row))
		switch {
		case !found:
			r.drift(k.id, t.name, t.keyText(k), "", projections.DriftMissing, t.summary(row), "")
		case !same:
			*bad = append(*bad, *row)
		}
	}
}

func orderSummary(o *orderRow) string {
	return fmt.Sprintf("status=%s version=%d last_seq=%d", o.Status, o.Version, o.LastSeq)
}

func lineSummary(l *lineRow) string {
	return fmt.Sprintf("sku=%s qty=%d unit_price=%d amount=%d", l.SKU, l.Qty, l.UnitPrice, l.Amount)
}

func timelineSummary(t *timelineRow) string {
	return fmt.Sprintf("%s status=%s seq=%d", t.EventType, t.Status, t.Seq)
}

// compareOrders compares every stored order with the log's, column by
// column.
func (r *reconciler) compareOrders(ctx context.Context) error {
	var o orderRow
	err := r.forEach(ctx, "SELECT "+orderColumns+" FROM "+r.schema+".orders ORDER BY order_id", nil, o.scanTargets(), func() error {
		r.res.Rows++
		want := r.orders[o.OrderID]
		if want == nil {
			r.drift(o.OrderID, "orders", "", "", projections.DriftExtra, "", orderSummary(&o))
			return nil
		}
		delete(r.orders, o.OrderID)
		diffRow(orderCols, want, &o, func(col, log, store string) {
			r.drift(o.OrderID, "orders", "", col, projections.DriftDiffers, log, store)
		})
		return nil
	})
	if err != nil {
		return fmt.Errorf("orders: %w", err)
	}
	for _, want := range r.orders {
		r.drift(want.OrderID, "orders", "", "", projections.DriftMissing, orderSummary(want), "")
	}
	r.orders = nil
	return nil
}

// keyBatch bounds the keys of one query for rows by primary key.
const keyBatch = 5000

// storedRows reads the rows of table (order_lines or order_timeline,
// whose key column is keyCol) with the given keys and calls fn for each.
func (r *reconciler) storedRows(ctx context.Context, table, columns, keyCol, keyType string, keys []rowKey, scans []any, fn func() error) error {
	for len(keys) > 0 {
		n := min(len(keys), keyBatch)
		ids, ks := make([]string, n), make([]int64, n)
		for i, k := range keys[:n] {
			ids[i], ks[i] = k.id, k.key
		}
		keys = keys[n:]
		sql := "SELECT t." + strings.ReplaceAll(columns, ", ", ", t.") + " FROM " + r.schema + "." + table + " t" +
			" JOIN unnest($1::text[], $2::" + keyType + "[]) AS k(order_id, " + keyCol + ") USING (order_id, " + keyCol + ")"
		if err := r.forEach(ctx, sql, []any{ids, ks}, scans, fn); err != nil {
			return fmt.Errorf("%s: %w", table, err)
		}
	}
	return nil
}

// compareRows reports the stored rows of t no row of the log matched
// (sums' unseen ones), and those in bad, whose digest differed, column
// by column.
func compareRows[R any](ctx context.Context, r *reconciler, t *childTable[R], sums storedSums, bad []R) error {
	want := make(map[rowKey]*R, len(bad))
	keys := sums.unseen()
	extra := make(map[rowKey]bool, len(keys))
	for _, k := range keys {
		extra[k] = true
	}
	for i := range bad {
		k := t.key(&bad[i])
		want[k] = &bad[i]
		keys = append(keys, k)
	}
	var got R
	return r.storedRows(ctx, t.name, t.columns, t.keyCol, t.keyType, keys, t.scan(&got), func() error {
		k := t.key(&got)
		if extra[k] {
			r.drift(k.id, t.name, t.keyText(k), "", projections.DriftExtra, "", t.summary(&got))
			return nil
		}
		if w := want[k]; w != nil {
			diffRow(t.cols, w, &got, func(col, log, store string) {
				r.drift(k.id, t.name, t.keyText(k), col, projections.DriftDiffers, log, store)
			})
		}
		return nil
	})
}

// column is one column of a table as a reconciliation compares it.
type column[R any] struct {
	name string
	text func(*R) string
	// same compares the log's value with the stored one; nil: their
	// texts are compared.
	same func(log, store *R) bool
}

// diffRow calls drift for each column in which store differs from log.
func diffRow[R any](cols []column[R], log, store *R, drift func(col, log, store string)) {
	for _, c := range cols {
		lt, st := c.text(log), c.text(store)
		if c.same != nil && c.same(log, store) || c.same == nil && lt == st {
			continue
		}
		drift(c.name, lt, st)
	}
}

func str[R any](name string, f func(*R) string) column[R] { return column[R]{name: name, text: f} }

func integer[R any](name string, f func(*R) int64) column[R] {
	return column[R]{name: name, text: func(r *R) string { return strconv.FormatInt(f(r), 10) }}
}

func instant[R any](name string, f func(*R) time.Time) column[R] {
	return column[R]{name: name, text: func(r *R) string { return formatTime(f(r)) },
		same: func(log, store *R) bool { return sameInstant(f(log), f(store)) }}
}

func jsonb[R any](name string, f func(*R) string) column[R] {
	return column[R]{name: name, text: f, same: func(log, store *R) bool { return sameJSON(f(log), f(store)) }}
}

var orderCols = []column[orderRow]{
	str("customer_id", func(r *orderRow) string { return r.CustomerID }),
	jsonb("customer", func(r *orderRow) string { return r.Customer }),
	jsonb("shipping_address", func(r *orderRow) string { return r.ShippingAddress }),
	str("status", func(r *orderRow) string { return r.Status }),
	integer("total_amount", func(r *orderRow) int64 { return r.TotalAmount }),
	str("currency", func(r *orderRow) string { return r.Currency }),
	str("payment_status", func(r *orderRow) string { return r.PaymentStatus }),
	str("payment_id", func(r *orderRow) string { return r.PaymentID }),
	str("checkout_url", func(r *orderRow) string { return r.CheckoutURL }),
	str("carrier", func(r *orderRow) string { return r.Carrier }),
	str("tracking_number", func(r *orderRow) string { return r.TrackingNumber }),
	str("status_reason", func(r *orderRow) string { return r.StatusReason }),
	instant("created_at", func(r *orderRow) time.Time { return r.CreatedAt }),
	instant("updated_at", func(r *orderRow) time.Time { return r.UpdatedAt }),
	integer("version", func(r *orderRow) int64 { return r.Version }),
	integer("last_seq", func(r *orderRow) int64 { return r.LastSeq }),
}

var lineCols = []column[lineRow]{
	str("sku", func(r *lineRow) string { return r.SKU }),
	integer("qty", func(r *lineRow) int64 { return r.Qty }),
	integer("unit_price", func(r *lineRow) int64 { return r.UnitPrice }),
	integer("amount", func(r *lineRow) int64 { return r.Amount }),
}

var timelineCols = []column[timelineRow]{
	integer("seq", func(r *timelineRow) int64 { return r.Seq }),
	instant("at", func(r *timelineRow) time.Time { return r.At }),
	str("event_type", func(r *timelineRow) string { return r.EventType }),
	str("status", func(r *timelineRow) string { return r.Status }),
	str("detail", func(r *timelineRow) string { return r.Detail }),
	str("commit_id", func(r *timelineRow) string { return r.CommitID }),
	str("causation_id", func(r *timelineRow) string { return r.CausationID }),
	str("correlation_id", func(r *timelineRow) string { return r.CorrelationID }),
	str("actor", func(r *timelineRow) string { return r.Actor }),
}

// sameInstant reports whether a stored time is the instant the log
// says, to the microsecond PostgreSQL keeps (truncated or rounded).
func sameInstant(log, store time.Time) bool {
	return store.Equal(log) || store.Equal(log.Truncate(time.Microsecond)) || store.Equal(log.Round(time.Microsecond))
}

func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// sameJSON reports whether two JSON texts hold the same value, whatever
// the order of keys and the spacing (jsonb keeps neither).
func sameJSON(a, b string) bool {
	if a == b {
		return true
	}
	va, oka := decodeJSON(a)
	vb, okb := decodeJSON(b)
	return oka && okb && reflect.DeepEqual(va, vb)
}

func decodeJSON(s string) (any, bool) {
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil || dec.More() {
		return nil, false
	}
	return v, true
}
