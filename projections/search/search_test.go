package search_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ordo-shop/ordo/aggregates/order"
	"github.com/ordo-shop/ordo/eventlog"
	"github.com/ordo-shop/ordo/eventlog/logtest"
	"github.com/ordo-shop/ordo/events"
	"github.com/ordo-shop/ordo/internal/command"
	"github.com/ordo-shop/ordo/internal/testkit"
	"github.com/ordo-shop/ordo/projections"
	"github.com/ordo-shop/ordo/projections/search"
	"github.com/ordo-shop/ordo/streams"
)

type env struct {
	t      *testing.T
	ctx    context.Context
	log    *streams.Store
	orders *command.Handler[order.State, order.Command]
	esURL  string
	prefix string
	st     *search.Store
}

func newEnv(t *testing.T, partitions int) *env {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	t.Cleanup(cancel)
	log, orders := testkit.OrderLog(t, partitions)
	url, prefix := testkit.Elasticsearch(t)
	e := &env{t: t, ctx: ctx, log: log, orders: orders, esURL: url, prefix: prefix}
	e.st = e.open(url)
	return e
}

// openAs opens a store on e's index prefix for a log of partitions
// whose identity is logID.
func (e *env) openAs(partitions int, logID string) *search.Store {
	e.t.Helper()
	c, err := search.NewClient(e.esURL)
	if err != nil {
		e.t.Fatal(err)
	}
	st, err := search.New(c, search.Options{Prefix: e.prefix, Partitions: partitions, Logger: testLogger(e.t), Log: logID})
	if err != nil {
		e.t.Fatal(err)
	}
	return st
}

func (e *env) open(url string) *search.Store {
	e.t.Helper()
	c, err := search.NewClient(url)
	if err != nil {
		e.t.Fatal(err)
	}
	st, err := search.New(c, search.Options{Prefix: e.prefix, Partitions: e.log.Partitions(), Loader: e.log, Logger: testLogger(e.t)})
	if err != nil {
		e.t.Fatal(err)
	}
	return st
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func (e *env) runner(sink projections.Sink) *projections.Runner {
	e.t.Helper()
	r, err := projections.New(e.log, sink, nil, projections.Options{BatchSize: 200, IdlePoll: 50 * time.Millisecond, WatermarkInterval: 50 * time.Millisecond, Logger: testLogger(e.t)})
	if err != nil {
		e.t.Fatal(err)
	}
	return r
}

func (e *env) catchUp() {
	e.t.Helper()
	if err := e.runner(e.st.Sink()).CatchUp(e.ctx, 0); err != nil {
		e.t.Fatal(err)
	}
	if err := e.st.Refresh(e.ctx); err != nil {
		e.t.Fatal(err)
	}
}

var (
	surnames = []rune("王李张刘陈杨黄赵周吴徐孙马朱胡郭何高林罗")
	givens   = []rune("伟芳娜敏静丽强磊洋艳勇军杰娟涛明超秀霞平")
	latin    = []string{"Wei Zhang", "Anna Schmidt", "Lucas Martin", "Maria Garcia", "John Smith", "Yuki Tanaka"}
)

// customer returns order i's customer: a Chinese name for even i, a
// Latin one for odd i, and an email and phone of its own.
func customer(i int) events.Customer {
	name := latin[i%len(latin)]
	if i%2 == 0 {
		name = string(surnames[i%len(surnames)]) + string(givens[(i/len(surnames))%len(givens)])
	}
	return events.Customer{
		Name:  name,
		Email: fmt.Sprintf("Customer.%d@Example.com", i),
		Phone: fmt.Sprintf("+86 139 %04d %04d", (i*7919)%10000, i),
	}
}

func orderID(i int) string { return fmt.Sprintf("ord-%05d-x%d", i, i*31%97) }

// place runs n orders through their lives (path i), from workers
// goroutines; custom overrides order i's customer and SKU where given.
func (e *env) place(from, n, workers int, custom map[int]func(*order.Place)) {
	e.t.Helper()
	ids := make(chan int, n)
	for i := from; i < from+n; i++ {
		ids <- i
	}
	close(ids)
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for range workers {
		wg.Go(func() {
			for i := range ids {
				if err := e.runOrder(i, custom[i]); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		e.t.Fatal(err)
	}
}

func (e *env) runOrder(i int, custom func(*order.Place)) error {
	id := orderID(i)
	cmds := testkit.OrderCommands(id, fmt.Sprintf("cust-%d", i), i)
	p := cmds[0].(order.Place)
	p.Customer = customer(i)
	p.ShippingAddress.Name = ""
	if custom != nil {
		custom(&p)
	}
	cmds[0] = p
	for n, cmd := range cmds {
		_, err := e.orders.Handle(e.ctx, command.Request[order.Command]{
			AggregateID: id, CommandID: fmt.Sprintf("%s-%d", id, n), Command: cmd,
			Metadata: events.Metadata{Actor: "test", CorrelationID: "corr-" + id},
		})
		if err != nil {
			return fmt.Errorf("order %s command %d: %w", id, n, err)
		}
	}
	return nil
}

// lastSeqs returns each order's last commit sequence and version in the
// log.
func (e *env) lastSeqs() map[string][2]uint64 {
	e.t.Helper()
	out := map[string][2]uint64{}
	err := logtest.Replay(e.ctx, e.log, eventlog.TypeOrder, 0, func(r eventlog.Record) error {
		out[r.Commit.AggregateID] = [2]uint64{r.Seq, r.Commit.Version + uint64(len(r.Commit.Events)) - 1}
		return nil
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}

// docs returns every order document of the live index.
func (e *env) docs(st *search.Store) (map[string]search.Document, error) {
	if err := st.Refresh(e.ctx); err != nil {
		return nil, err
	}
	all, err := st.All(e.ctx)
	if err != nil {
		return nil, err
	}
	out := map[string]search.Document{}
	for _, d := range all {
		out[d.OrderID] = d
	}
	return out, nil
}

// converged checks that every order's document is at its last commit.
func (e *env) converged(st *search.Store) error {
	want := e.lastSeqs()
	got, err := e.docs(st)
	if err != nil {
		return err
	}
	if len(got) != len(want) {
		return fmt.Errorf("%d documents, %d orders in the log", len(got), len(want))
	}
	for id, w := range want {
		d := got[id]
		if d.Seq != w[0] || d.Version != w[1] {
			return fmt.Errorf("order %s: document at seq %d v%d, log at seq %d v%d", id, d.Seq, d.Version, w[0], w[1])
		}
	}
	return nil
}

func (e *env) search(q search.Query) search.Result {
	e.t.Helper()
	r, err := e.st.Search(e.ctx, q)
	if err != nil {
		e.t.Fatalf("search %+v: %v", q, err)
	}
	return r
}

func TestEveryLookupKindFindsTheOrderAmong1000(t *testing.T) {
	e := newEnv(t, 4)
	const n = 1200
	const target = 744 // path 0: cancelled, no payment (its extra line changes the total)
	custom := map[int]func(*order.Place){
		target: func(p *order.Place) {
			p.Customer.Name = "欧阳娜娜"
			p.ShippingAddress.Name = "Marguerite Okonkwo"
			p.Lines = append(p.Lines, events.OrderLine{SKU: "RARE-OOLONG-7", Qty: 1, UnitPrice: events.Money{Amount: 100, Currency: "CNY"}})
		},
	}
	e.place(0, n, 8, custom)
	e.catchUp()
	id := orderID(target)
	cases := []struct{ what, q string }{
		{"order id", id},
		{"order id prefix", fmt.Sprintf("ord-%05d", target)},
		{"email", fmt.Sprintf("customer.%d@example.com", target)},
		{"email, other case and spaces", fmt.Sprintf("  Customer.%d@EXAMPLE.com ", target)},
		{"phone as given", customer(target).Phone},
		{"phone without country code", fmt.Sprintf("139 %04d %04d", (target*7919)%10000, target)},
		{"phone digits", fmt.Sprintf("86139%04d%04d", (target*7919)%10000, target)},
		{"last four", fmt.Sprintf("%04d", target)},
		{"Chinese name", "欧阳娜娜"},
		{"part of a Chinese name", "欧阳"},
		{"Latin recipient", "Marguerite Okonkwo"},
		{"Latin prefix", "okonk"},
		{"SKU", "RARE-OOLONG-7"},
		{"SKU, lower case", "rare-oolong-7"},
		{"SKU prefix", "RARE-OOL"},
	}
	for _, c := range cases {
		r := e.search(search.Query{Text: c.q, Limit: 5})
		if len(r.Hits) == 0 || r.Hits[0].OrderID != id {
			var got []string
			for _, h := range r.Hits {
				got = append(got, fmt.Sprintf("%s(%.1f)", h.OrderID, h.Score))
			}
			t.Errorf("%s %q: hits %v, want %s first", c.what, c.q, got, id)
		}
	}
	// A common Chinese name finds all its orders, the exact name first.
	r := e.search(search.Query{Text: "王伟", Limit: 100})
	if r.Total == 0 || !strings.HasPrefix(r.Hits[0].Customer.Name, "王伟") {
		t.Errorf("王伟: %d hits, first %+v", r.Total, r.Hits)
	}
	// Filters.
	r = e.search(search.Query{Text: "anna schmidt", Status: "delivered", Limit: 100})
	for _, h := range r.Hits {
		if h.Status != "delivered" {
			t.Errorf("status filter let %s (%s) through", h.OrderID, h.Status)
		}
	}
	if r.Total == 0 {
		t.Error("no delivered orders of Anna Schmidt found")
	}
	r = e.search(search.Query{Since: time.Now().Add(time.Hour)})
	if r.Total != 0 {
		t.Errorf("since the future: %d hits", r.Total)
	}
}

func TestPagingVisitsEveryMatchOnce(t *testing.T) {
	e := newEnv(t, 2)
	e.place(0, 60, 4, nil)
	e.catchUp()
	for _, q := range []string{"", "Example.com", "伟"} {
		total := e.search(search.Query{Text: q, Limit: 1}).Total
		seen := map[string]bool{}
		cursor := ""
		for pages := 0; ; pages++ {
			r := e.search(search.Query{Text: q, Limit: 7, Cursor: cursor})
			for _, h := range r.Hits {
				if seen[h.OrderID] {
					t.Fatalf("q %q: %s twice", q, h.OrderID)
				}
				seen[h.OrderID] = true
			}
			if r.NextCursor == "" || pages > 100 {
				break
			}
			cursor = r.NextCursor
		}
		if int64(len(seen)) != total || total == 0 {
			t.Errorf("q %q: paged through %d of %d", q, len(seen), total)
		}
	}
}

func TestHostileInputGetsACleanAnswer(t *testing.T) {
	e := newEnv(t, 2)
	e.place(0, 10, 2, nil)
	e.catchUp()
	hostile := []string{
		"", " ", `"`, `\`, `*`, `?`, `ord-*`, `a:b`, `(`, `)`, `[]{}`, `~`, `^2`, `!`, `&&`, `||`, `<>=`, `/regex/`,
		`{"query":{"match_all":{}}}`, `name:"x" OR 1=1`, `' OR '1'='1`, "\x00\x01", `%00`, `+-+-`, `@`, `@@@`,
		strings.Repeat("张", 200), strings.Repeat("a ", 100), "😀🎉", "\u202e", "...", "----",
	}
	for _, q := range hostile {
		if _, err := e.st.Search(e.ctx, search.Query{Text: q}); err != nil {
			t.Errorf("q %q: %v", q, err)
		}
	}
	for _, q := range []search.Query{
		{Text: strings.Repeat("x", search.MaxQueryRunes+1)},
		{Text: "\xff\xfe"},
		{Limit: 1000},
		{Limit: -1},
		{Cursor: "nope"},
		{Cursor: strings.Repeat("A", 5000)},
		{Text: "x", Cursor: e.search(search.Query{Limit: 1}).NextCursor}, // a cursor of another query mode
		{Since: time.Now(), Until: time.Now().Add(-time.Hour)},
	} {
		if _, err := e.st.Search(e.ctx, q); !search.IsBadQuery(err) {
			t.Errorf("%+v: %v, want a bad-query error", q, err)
		}
	}
}

func TestReplayingTheLogTwiceLeavesEveryDocumentAtItsLatestVersion(t *testing.T) {
	e := newEnv(t, 4)
	e.place(0, 300, 6, nil)
	e.catchUp()
	if err := e.converged(e.st); err != nil {
		t.Fatal(err)
	}
	for round := 1; round <= 2; round++ {
		if err := e.st.ResetCheckpoints(e.ctx); err != nil {
			t.Fatal(err)
		}
		cps, err := e.st.Checkpoints(e.ctx)
		if err != nil || slicesMax(cps) != 0 {
			t.Fatalf("checkpoints after reset: %v %v", cps, err)
		}
		e.catchUp()
		if err := e.converged(e.st); err != nil {
			t.Fatalf("replay %d: %v", round, err)
		}
	}
	// An out-of-order writer: a second sink replays old commits while
	// the first one is ahead. No document goes back.
	if err := e.st.ResetCheckpoints(e.ctx); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			if err := e.runner(e.open(e.esURL).Sink()).CatchUp(e.ctx, 0); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if err := e.converged(e.st); err != nil {
		t.Fatal(err)
	}
}

func slicesMax(xs []uint64) uint64 {
	var m uint64
	for _, x := range xs {
		m = max(m, x)
	}
	return m
}

func TestRebuildSwapsTheAliasWhileTheProjectorRuns(t *testing.T) {
	e := newEnv(t, 4)
	e.place(0, 200, 4, nil)
	ctx, cancel := context.WithCancel(e.ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = e.runner(e.st.Sink()).Run(ctx)
	}()
	loadDone := make(chan struct{})
	go func() {
		defer close(loadDone)
		e.place(200, 200, 4, nil)
	}()
	index, err := e.st.Rebuild(e.ctx, e.log, search.RebuildOptions{BatchSize: 100})
	if err != nil {
		t.Fatal(err)
	}
	if index != e.prefix+"orders_v2" {
		t.Errorf("rebuilt into %s", index)
	}
	<-loadDone
	e.waitConverged(e.st, time.Minute)
	cancel()
	<-done
	st, err := e.st.Status(e.ctx, 0)
	if err != nil || st.Index != index {
		t.Errorf("live index %q, want %s (%v)", st.Index, index, err)
	}
	// A second rebuild drops nothing live and moves to v3.
	if index, err = e.st.Rebuild(e.ctx, e.log, search.RebuildOptions{}); err != nil || index != e.prefix+"orders_v3" {
		t.Fatalf("second rebuild: %s %v", index, err)
	}
	if err := e.converged(e.st); err != nil {
		t.Fatal(err)
	}
	idx, err := e.st.Indices(e.ctx)
	if err != nil || len(idx) != 2 {
		t.Errorf("indices after two rebuilds: %v %v (want the live and the previous one)", idx, err)
	}
}

func (e *env) waitConverged(st *search.Store, d time.Duration) {
	e.t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := e.converged(st)
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("not converged after %s: %v", d, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func TestWaitForSeesAPosition(t *testing.T) {
	e := newEnv(t, 4)
	ctx, cancel := context.WithCancel(e.ctx)
	defer cancel()
	go func() { _ = e.runner(e.st.Sink()).Run(ctx) }()
	for i := range 20 {
		if err := e.runOrder(i, nil); err != nil {
			t.Fatal(err)
		}
		last, err := e.log.LastSeq(e.ctx, eventlog.TypeOrder)
		if err != nil {
			t.Fatal(err)
		}
		wctx, wcancel := context.WithTimeout(e.ctx, 10*time.Second)
		ok, err := e.st.WaitFor(wctx, last)
		wcancel()
		if !ok || err != nil {
			t.Fatalf("WaitFor(%d): %v %v", last, ok, err)
		}
		r := e.search(search.Query{Text: orderID(i)})
		if len(r.Hits) == 0 || r.Hits[0].OrderID != orderID(i) {
			t.Fatalf("order %d not found right after WaitFor", i)
		}
	}
}

// TestDocumentJSON keeps the document's wire names stable.
func TestDocumentJSON(t *testing.T) {
	b, _ := json.Marshal(search.Document{OrderID: "o", PhoneTails: []string{"1234"}})
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range []string{"order_id", "email", "phone_tails", "skus", "seq", "deleted", "name"} {
		if _, ok := m[k]; !ok {
			t.Errorf("no %s in %v", k, keys)
		}
	}
}

func TestNormalisation(t *testing.T) {
	if got := search.NormalizeEmail("  Zhang.Wei@Example.COM "); got != "zhang.wei@example.com" {
		t.Errorf("email %q", got)
	}
	if got := search.PhoneDigits("+86 (138) 0013-8000 ９"); got != "86138001380009" {
		t.Errorf("phone %q", got)
	}
}

// recordsOnly hides the log's FetchRaw, so the runner reads decoded
// records and applies them with Sink.Commit.
type recordsOnly struct{ projections.Source }

func TestBothReadPathsWriteTheSameDocuments(t *testing.T) {
	e := newEnv(t, 4)
	e.place(0, 200, 6, nil)
	e.catchUp() // the raw path: Decode and CommitDecoded
	c, err := search.NewClient(e.esURL)
	if err != nil {
		t.Fatal(err)
	}
	other, err := search.New(c, search.Options{Prefix: e.prefix + "records-", Partitions: e.log.Partitions(), Loader: e.log})
	if err != nil {
		t.Fatal(err)
	}
	r, err := projections.New(recordsOnly{e.log}, other.Sink(), nil, projections.Options{BatchSize: 200})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.CatchUp(e.ctx, 0); err != nil {
		t.Fatal(err)
	}
	want, err := e.docs(e.st)
	if err != nil {
		t.Fatal(err)
	}
	got, err := e.docs(other)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 200 || len(want) != 200 {
		t.Fatalf("%d and %d documents, want 200", len(got), len(want))
	}
	for id, w := range want {
		if g := got[id]; !reflect.DeepEqual(g, w) {
			t.Fatalf("order %s: records path wrote\n%+v\nraw path wrote\n%+v", id, g, w)
		}
	}
}
