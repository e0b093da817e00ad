package search

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/ordo-shop/ordo/eventlog"
	"github.com/ordo-shop/ordo/projections"
)

// ReconcileOptions tune [Store.Reconcile].
type ReconcileOptions struct {
	// Progress, if set, is called after each batch of the log read with
	// the stream sequence read up to and the one the reconciliation
	// reads to.
	Progress func(done, total uint64)
}

// Reconcile compares the live index with the log. It reads the
// checkpoints, then every order document with its version (the stream
// sequence of the last commit applied to it), then folds each order's
// commits with the projector's own fold up to the document's version and
// compares the document with the fold there, field by field. Documents
// may be ahead of their checkpoint (checkpoints move after the bulk
// request), so a projector running meanwhile causes no drift. It reports:
//   - a document whose version is not the sequence of any of its
//     order's commits ([projections.DriftUnknownVersion]);
//   - a field that differs from the fold at the document's version;
//   - an order with a commit at or below its partition's checkpoint but
//     no document ([projections.DriftMissing]) or an older one
//     ([projections.DriftStale]);
//   - a checkpoint past the end of the log.
//
// It holds the documents not yet compared and the fold of their orders,
// not the log. Elasticsearch not answering is an error wrapping
// [ErrUnavailable].
func (s *Store) Reconcile(ctx context.Context, src projections.LogReader, opts ReconcileOptions) (projections.Reconciliation, error) {
	r := &reconciler{st: s, src: src, opts: opts, orders: map[string]*docState{}, res: projections.Reconciliation{Projection: Name}}
	if err := r.run(ctx); err != nil {
		return projections.Reconciliation{}, fmt.Errorf("search: reconcile: %w", err)
	}
	projections.SortDrifts(r.res.Drifts)
	return r.res, nil
}

// reconciler is the state of one [Store.Reconcile].
type reconciler struct {
	st    *Store
	src   projections.LogReader
	opts  ReconcileOptions
	index string
	cps   []uint64
	// orders holds what is known of each order with a document or a
	// commit.
	orders map[string]*docState
	res    projections.Reconciliation
	// quarantined are the commits the projector set aside, unresolved.
	quarantined map[uint64]bool
}

// docState is one order's document and fold during a reconciliation.
type docState struct {
	// version is the stored document's (0: there is none); doc the
	// stored document until it was compared, fold the log's document up
	// to the commits read so far, until then.
	version   uint64
	doc, fold *Document
	// covered is set by the order's first commit the checkpoint covers;
	// applied is the last such sequence above version; unknown means
	// the fold passed version without a commit there.
	covered bool
	applied uint64
	unknown bool
}

func (r *reconciler) drift(orderID, field, kind, log, store string) {
	r.res.Drifts = append(r.res.Drifts, projections.Drift{Projection: Name, OrderID: orderID, Table: r.index,
		Field: field, Kind: kind, Log: log, Store: store})
}

func (r *reconciler) run(ctx context.Context) error {
	index, err := r.st.liveIndex(ctx)
	if statusOf(err) == http.StatusNotFound {
		return fmt.Errorf("no index behind the alias %s", r.st.alias)
	}
	if err != nil {
		return err
	}
	r.index, r.res.Target = index, index
	// The checkpoints first: a document written before a checkpoint
	// moved is then at least that new when read.
	if r.cps, _, err = r.st.checkpoints(ctx, index); err != nil {
		return fmt.Errorf("checkpoints: %w", err)
	}
	r.res.Checkpoints = r.cps
	if err := r.st.do(ctx, "POST", "/"+index+"/_refresh", nil, nil); err != nil {
		return fmt.Errorf("refresh %s: %w", index, err)
	}
	q, err := r.st.Quarantined(ctx)
	if err != nil {
		return err
	}
	r.quarantined = make(map[uint64]bool, len(q))
	for _, e := range q {
		r.quarantined[e.Seq] = true
	}
	err = r.st.eachDocument(ctx, index, func(id string, version uint64, d *Document) error {
		r.orders[id] = &docState{version: version, doc: d}
		r.res.Rows++
		return nil
	})
	if err != nil {
		return fmt.Errorf("read documents: %w", err)
	}
	// Then the log, to its end now: every document read names a commit
	// at or below it.
	last, err := r.src.LastSeq(ctx, eventlog.TypeOrder)
	if err != nil {
		return err
	}
	for p, cp := range r.cps {
		if cp > last {
			r.res.Drifts = append(r.res.Drifts, projections.Drift{Projection: Name, Table: index, Key: "partition=" + strconv.Itoa(p), Field: "seq",
				Kind: projections.DriftDiffers, Log: "the log ends at " + strconv.FormatUint(last, 10), Store: strconv.FormatUint(cp, 10)})
		}
	}
	err = projections.ReadLog(ctx, r.src, eventlog.TypeOrder, last, func(recs []eventlog.RawRecord) error {
		for _, rec := range recs {
			if err := r.commit(rec); err != nil {
				return err
			}
		}
		if r.opts.Progress != nil {
			r.opts.Progress(recs[len(recs)-1].Seq, last)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("fold the log: %w", err)
	}
	r.finish()
	return nil
}

// commit takes one commit of the log into account: it is decoded only
// if its order's document is still to be compared.
func (r *reconciler) commit(rec eventlog.RawRecord) error {
	if r.quarantined[rec.Seq] {
		r.res.Quarantined++
		return nil
	}
	id, ok := envelopeAggregateID(rec.Data)
	if !ok {
		c, err := r.st.dec.Decode(rec)
		if err != nil {
			return err
		}
		id = c.AggregateID
	}
	st := r.orders[id]
	if st == nil {
		st = &docState{}
		r.orders[id] = st
	}
	p := r.src.Partition(id)
	if p < 0 || p >= len(r.cps) {
		return fmt.Errorf("seq %d: partition %d of %d", rec.Seq, p, len(r.cps))
	}
	if rec.Seq <= r.cps[p] {
		r.res.Commits++
		if !st.covered {
			st.covered = true
			r.res.Orders++
		}
		if rec.Seq > st.version {
			st.applied = rec.Seq
		}
	}
	if st.doc == nil {
		return nil // no document, or compared already
	}
	c, err := r.st.dec.Decode(rec)
	if err != nil {
		return err
	}
	if c.AggregateID != id {
		return fmt.Errorf("seq %d: aggregate id %q, but the envelope was read as %q", rec.Seq, c.AggregateID, id)
	}
	if c.AggregateType != eventlog.TypeOrder {
		return fmt.Errorf("seq %d: a %s commit in the order stream", c.Seq, c.AggregateType)
	}
	if st.fold, err = apply(st.fold, c); err != nil {
		return err
	}
	switch {
	case rec.Seq == st.version:
		diffDocument(st.fold, st.doc, func(field, log, store string) {
			r.drift(id, field, projections.DriftDiffers, log, store)
		})
		st.doc, st.fold = nil, nil
	case rec.Seq > st.version:
		st.unknown = true
		st.doc, st.fold = nil, nil
	}
	return nil
}

// finish reports what only the whole log tells: documents at no
// commit's sequence, and missing or stale ones.
func (r *reconciler) finish() {
	for id, st := range r.orders {
		version := strconv.FormatUint(st.version, 10)
		switch {
		case st.unknown || st.doc != nil:
			r.drift(id, "_version", projections.DriftUnknownVersion, "", version)
		case st.version == 0 && st.applied > 0:
			r.drift(id, "", projections.DriftMissing, "seq="+strconv.FormatUint(st.applied, 10), "")
		case st.applied > 0:
			r.drift(id, "_version", projections.DriftStale, strconv.FormatUint(st.applied, 10), version)
		}
	}
	r.orders = nil
}

// docFields are the fields of a [Document] as a reconciliation compares
// them: by their text (times in UTC, so equal instants are equal texts).
var docFields = []struct {
	name string
	text func(*Document) string
}{
	{"doc_type", func(d *Document) string { return d.DocType }},
	{"order_id", func(d *Document) string { return d.OrderID }},
	{"customer_id", func(d *Document) string { return d.CustomerID }},
	{"customer.name", func(d *Document) string { return d.Customer.Name }},
	{"customer.email", func(d *Document) string { return d.Customer.Email }},
	{"customer.phone", func(d *Document) string { return d.Customer.Phone }},
	{"name", func(d *Document) string { return d.Name }},
	{"email", func(d *Document) string { return d.Email }},
	{"phone_digits", func(d *Document) string { return d.PhoneDigits }},
	{"phone_tails", func(d *Document) string { return fmt.Sprintf("%q", d.PhoneTails) }},
	{"skus", func(d *Document) string { return fmt.Sprintf("%q", d.SKUs) }},
	{"status", func(d *Document) string { return d.Status }},
	{"status_reason", func(d *Document) string { return d.StatusReason }},
	{"payment_status", func(d *Document) string { return d.PaymentStatus }},
	{"payment_id", func(d *Document) string { return d.PaymentID }},
	{"carrier", func(d *Document) string { return d.Carrier }},
	{"tracking_number", func(d *Document) string { return d.TrackingNumber }},
	{"total_amount", func(d *Document) string { return strconv.FormatInt(d.TotalAmount, 10) }},
	{"currency", func(d *Document) string { return d.Currency }},
	{"city", func(d *Document) string { return d.City }},
	{"created_at", func(d *Document) string { return formatTime(d.CreatedAt) }},
	{"updated_at", func(d *Document) string { return formatTime(d.UpdatedAt) }},
	{"version", func(d *Document) string { return strconv.FormatUint(d.Version, 10) }},
	{"seq", func(d *Document) string { return strconv.FormatUint(d.Seq, 10) }},
	{"deleted", func(d *Document) string { return strconv.FormatBool(d.Deleted) }},
}

// diffDocument calls drift for each field in which store differs from
// log.
func diffDocument(log, store *Document, drift func(field, log, store string)) {
	for _, f := range docFields {
		if lt, st := f.text(log), f.text(store); lt != st {
			drift(f.name, lt, st)
		}
	}
}

func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// errStopReading ends [Store.eachDocument] early without an error.
var errStopReading = errors.New("stop reading")

// documentPage is how many documents one search of eachDocument reads.
const documentPage = 5000

// eachDocument calls fn for every order document of target (an index or
// the alias), soft-deleted ones too, in order of order id, with its
// _id and _version. It pages with search_after on the order id, so it
// reads any number of documents; it sees what the last refresh made
// visible. fn returning errStopReading ends it without an error.
func (s *Store) eachDocument(ctx context.Context, target string, fn func(id string, version uint64, d *Document) error) error {
	var after []any
	for {
		body := map[string]any{
			"query":            map[string]any{"term": map[string]any{"doc_type": docTypeOrder}},
			"sort":             []any{map[string]any{"order_id": "asc"}},
			"size":             documentPage,
			"version":          true,
			"track_total_hits": false,
		}
		if after != nil {
			body["search_after"] = after
		}
		var res struct {
			Hits struct {
				Hits []struct {
					ID      string    `json:"_id"`
					Version uint64    `json:"_version"`
					Sort    []any     `json:"sort"`
					Source  *Document `json:"_source"`
				} `json:"hits"`
			} `json:"hits"`
		}
		if err := s.do(ctx, "POST", "/"+target+"/_search", body, &res); err != nil {
			return err
		}
		for _, h := range res.Hits.Hits {
			if h.Source == nil {
				return fmt.Errorf("document %s has no source", h.ID)
			}
			if err := fn(h.ID, h.Version, h.Source); err != nil {
				if errors.Is(err, errStopReading) {
					return nil
				}
				return err
			}
		}
		if len(res.Hits.Hits) < documentPage {
			return nil
		}
		after = res.Hits.Hits[len(res.Hits.Hits)-1].Sort
	}
}
