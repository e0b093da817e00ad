package search_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ordo-shop/ordo/eventlog"
	"github.com/ordo-shop/ordo/eventlog/logtest"
	"github.com/ordo-shop/ordo/projections"
	"github.com/ordo-shop/ordo/projections/search"
)

func (e *env) reconcile(st *search.Store) projections.Reconciliation {
	e.t.Helper()
	res, err := st.Reconcile(e.ctx, e.log, search.ReconcileOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	return res
}

// es sends one request to Elasticsearch and fails the test on an answer
// other than 2xx; it returns the answer's body.
func (e *env) es(method, path string, body any) map[string]any {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(e.ctx, method, e.esURL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		e.t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, raw)
	}
	_ = json.Unmarshal(raw, &out)
	return out
}

// stored returns a document's source and version as stored.
func (e *env) stored(index, id string) (map[string]any, uint64) {
	e.t.Helper()
	got := e.es("GET", "/"+index+"/_doc/"+id, nil)
	return got["_source"].(map[string]any), uint64(got["_version"].(float64))
}

func (e *env) liveIndex() string {
	e.t.Helper()
	st, err := e.st.Status(e.ctx, 0)
	if err != nil {
		e.t.Fatal(err)
	}
	return st.Index
}

// driftList renders drifts as "order where kind", sorted.
func driftList(ds []projections.Drift) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.OrderID + " " + d.Where() + " " + d.Kind
	}
	slices.Sort(out)
	return out
}

// TestReconcileNamesEveryCorruption: an index the projector filled
// agrees with the log; then each damage to a document is reported with
// the order and the field.
func TestReconcileNamesEveryCorruption(t *testing.T) {
	e := newEnv(t, 4)
	e.place(0, 30, 3, nil)
	e.catchUp()
	res := e.reconcile(e.st)
	if len(res.Drifts) != 0 {
		t.Fatalf("a fresh index drifts: %v", driftList(res.Drifts))
	}
	seqs := e.lastSeqs()
	commits := 0
	if err := logtest.Replay(e.ctx, e.log, eventlog.TypeOrder, 0, func(eventlog.Record) error { commits++; return nil }); err != nil {
		t.Fatal(err)
	}
	index := e.liveIndex()
	if res.Projection != search.Name || res.Target != index || res.Rows != 30 || res.Orders != 30 || res.Commits != commits || len(res.Checkpoints) != 4 {
		t.Fatalf("reconciliation %+v", res)
	}

	// orderID(1) is delivered (path 1), orderID(5) waits for payment.
	src, v := e.stored(index, orderID(1))
	src["status"] = "cancelled"
	e.es("PUT", fmt.Sprintf("/%s/_doc/%s?version=%d&version_type=external_gte", index, orderID(1), v), src)
	src, v = e.stored(index, orderID(5))
	src["deleted"] = true
	e.es("PUT", fmt.Sprintf("/%s/_doc/%s?version=%d&version_type=external_gte", index, orderID(5), v), src)
	e.es("DELETE", "/"+index+"/_doc/"+orderID(2), nil)
	src, _ = e.stored(index, orderID(3))
	last := e.mustLast()
	e.es("PUT", fmt.Sprintf("/%s/_doc/%s?version=%d&version_type=external", index, orderID(3), last+1000), src)
	src["order_id"] = "ghost"
	e.es("PUT", fmt.Sprintf("/%s/_doc/ghost?version=%d&version_type=external", index, seqs[orderID(4)][0]), src)

	res = e.reconcile(e.st)
	want := []string{
		"ghost " + index + "._version unknown_version",
		orderID(1) + " " + index + ".status differs",
		orderID(2) + " " + index + " missing",
		orderID(3) + " " + index + "._version unknown_version",
		orderID(5) + " " + index + ".deleted differs",
	}
	slices.Sort(want)
	if got := driftList(res.Drifts); !slices.Equal(got, want) {
		t.Fatalf("drifts:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, d := range res.Drifts {
		if d.OrderID == orderID(1) && (d.Log != "delivered" || d.Store != "cancelled") {
			t.Errorf("status drift %+v", d)
		}
		if d.OrderID == orderID(3) && d.Store != fmt.Sprint(last+1000) {
			t.Errorf("version drift %+v", d)
		}
	}
}

func (e *env) mustLast() uint64 {
	e.t.Helper()
	last, err := e.log.LastSeq(e.ctx, eventlog.TypeOrder)
	if err != nil {
		e.t.Fatal(err)
	}
	return last
}

// setCheckpoint writes partition p's checkpoint document as the
// projector would.
func (e *env) setCheckpoint(index string, p int, seq uint64) {
	e.t.Helper()
	e.es("PUT", fmt.Sprintf("/%s/_doc/~checkpoint~%d?refresh=true", index, p),
		map[string]any{"doc_type": "checkpoint", "partition": p, "seq": seq, "updated_at": time.Now().UTC()})
}

// TestReconcileFollowsTheCheckpoints: an index that applied each
// partition up to another point is not drift, nor are documents ahead
// of their checkpoint (the checkpoint moves after the documents); a
// checkpoint ahead of its documents makes them stale or missing.
func TestReconcileFollowsTheCheckpoints(t *testing.T) {
	e := newEnv(t, 4)
	e.place(0, 40, 4, nil)
	last := e.mustLast()
	var byPart [4][]eventlog.Record
	if err := logtest.Replay(e.ctx, e.log, eventlog.TypeOrder, 0, func(r eventlog.Record) error {
		p := e.log.Partition(r.Commit.AggregateID)
		byPart[p] = append(byPart[p], r)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	to := make([]uint64, 4)
	for p, recs := range byPart {
		to[p] = last * uint64(p+1) / 5
		n := 0
		for n < len(recs) && recs[n].Seq <= to[p] {
			n++
		}
		if err := e.st.Sink().Commit(e.ctx, p, 0, to[p], recs[:n]); err != nil {
			t.Fatal(err)
		}
	}
	index := e.liveIndex()
	if res := e.reconcile(e.st); len(res.Drifts) != 0 {
		t.Fatalf("a lagging index drifts: %v", driftList(res.Drifts))
	}
	// Documents ahead of partition 3's checkpoint.
	e.setCheckpoint(index, 3, to[3]/2)
	if res := e.reconcile(e.st); len(res.Drifts) != 0 {
		t.Fatalf("documents ahead of their checkpoint drift: %v", driftList(res.Drifts))
	}
	// Partition 1's checkpoint says everything is applied.
	e.setCheckpoint(index, 1, last)
	var want []string
	first := map[string]uint64{}
	lastOf := map[string]uint64{}
	for _, r := range byPart[1] {
		id := r.Commit.AggregateID
		if first[id] == 0 {
			first[id] = r.Seq
		}
		lastOf[id] = r.Seq
	}
	for id, seq := range lastOf {
		switch {
		case first[id] > to[1]:
			want = append(want, id+" "+index+" missing")
		case seq > to[1]:
			want = append(want, id+" "+index+"._version stale")
		}
	}
	slices.Sort(want)
	res := e.reconcile(e.st)
	if got := driftList(res.Drifts); len(want) == 0 || !slices.Equal(got, want) {
		t.Fatalf("drifts:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestReconcileWhileTheProjectorRuns: orders are written and indexed
// while reconciliations run; none of them may see drift.
func TestReconcileWhileTheProjectorRuns(t *testing.T) {
	e := newEnv(t, 4)
	e.place(0, 20, 2, nil)
	if err := e.st.EnsureIndex(e.ctx); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(e.ctx)
	done := make(chan error, 1)
	go func() { done <- e.runner(e.st.Sink()).Run(ctx) }()
	defer func() { cancel(); <-done }()
	loadDone := make(chan struct{})
	go func() {
		defer close(loadDone)
		e.place(20, 60, 2, nil)
	}()
	other := e.open(e.esURL) // as orderctl would: a store of its own
	for i, loading := 0, true; loading; i++ {
		select {
		case <-loadDone:
			loading = false // and one more, the projector still indexing the end
		default:
		}
		res := e.reconcile(other)
		if len(res.Drifts) != 0 {
			t.Fatalf("reconciliation %d: %v", i, driftList(res.Drifts))
		}
		t.Logf("reconciliation %d: %d documents", i, res.Rows)
	}
}

func TestReconcileWithoutAnIndex(t *testing.T) {
	e := newEnv(t, 4)
	if _, err := e.st.Reconcile(e.ctx, e.log, search.ReconcileOptions{}); err == nil || !strings.Contains(err.Error(), "no index behind the alias") {
		t.Fatalf("reconcile without an index: %v", err)
	}
}
