package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ordo-shop/ordo/internal/config"
	"github.com/ordo-shop/ordo/internal/local/datadir"
	"github.com/ordo-shop/ordo/internal/local/esserver"
	"github.com/ordo-shop/ordo/internal/testkit"
	"github.com/ordo-shop/ordo/projections/search"
)

// withSearch gives the test's orderd a real Elasticsearch (its own index
// prefix) and runs both projectors.
func withSearch(t *testing.T) func(*config.Config) {
	u, prefix := testkit.Elasticsearch(t)
	return func(c *config.Config) {
		c.ElasticsearchURL, c.ElasticsearchPrefix = u, prefix
		c.Roles = []string{"api", "projections", "search"}
		// The first ?position= also waits for the index to be created,
		// which takes seconds on a loaded machine.
		c.ReadYourWritesWait = 8 * time.Second
	}
}

func searchBody(name, email, phone string) map[string]any {
	b := orderBody(line("TEA-250", 1))
	b["customer"] = map[string]any{"name": name, "email": email, "phone": phone}
	return b
}

func hitIDs(r response) []string {
	var ids []string
	hits, _ := r.body["hits"].([]any)
	for _, h := range hits {
		ids = append(ids, h.(map[string]any)["order_id"].(string))
	}
	return ids
}

// TestSearchFindsOrdersThroughTheAPI places orders through the command
// API and finds each by every kind of lookup, reading its own writes
// with ?position=.
func TestSearchFindsOrdersThroughTheAPI(t *testing.T) {
	ta := mustStart(t, withSearch(t))
	ta.putSKU("TEA-250", 1999, 1000)
	ta.putSKU("RARE-PUERH-9", 9999, 10)
	var ids []string
	var pos string
	for i := range 30 {
		r := ta.place(ta.alice, fmt.Sprint("s-", i), searchBody(fmt.Sprintf("客户%d", i), fmt.Sprintf("buyer%d@Example.com", i), fmt.Sprintf("+86 138 %04d %04d", i, 1000+i)))
		if r.status != 202 {
			t.Fatalf("place: %d %s", r.status, r.raw)
		}
		ids = append(ids, r.body["order_id"].(string))
		pos = r.body["position"].(string)
	}
	b := orderBody(line("RARE-PUERH-9", 1))
	b["customer"] = map[string]any{"name": "欧阳娜娜", "email": " NaNa.OuYang@Example.COM", "phone": "+86 (139) 1234-5678"}
	r := ta.place(ta.bob, "s-target", b)
	if r.status != 202 {
		t.Fatalf("place: %d %s", r.status, r.raw)
	}
	target, pos := r.body["order_id"].(string), r.body["position"].(string)
	for _, q := range []string{target, target[:10], "nana.ouyang@example.com", "5678", "139-1234-5678", "欧阳", "欧阳娜娜", "rare-puerh-9"} {
		got := ta.do("GET", "/v1/search/orders?q="+url.QueryEscape(q)+"&position="+url.QueryEscape(pos), ta.agent, nil)
		if got.status != 200 {
			t.Fatalf("q %q: %d %s", q, got.status, got.raw)
		}
		if ids := hitIDs(got); len(ids) == 0 || ids[0] != target {
			t.Errorf("q %q: hits %v, want %s first", q, ids, target)
		}
	}
	got := ta.do("GET", "/v1/search/orders?q="+url.QueryEscape("buyer7@example.com"), ta.agent, nil)
	if hits := hitIDs(got); len(hits) == 0 || hits[0] != ids[7] {
		t.Errorf("email: %s", got.raw)
	}
	// The search projection is listed beside the read model, caught up
	// to at least the position read above.
	if sp := projectionNamed(t, ta, "search"); sp["state"] == "unavailable" || sp["version"].(float64) < 1 ||
		sp["checkpoint"].(float64) < float64(seqOf(t, pos)) {
		t.Errorf("GET /v1/projections, search: %v", sp)
	}
	// Paging with the cursor over every order.
	seen := map[string]bool{}
	path := "/v1/search/orders?limit=7"
	for page := 0; page < 10; page++ {
		got := ta.do("GET", path, ta.agent, nil)
		if got.status != 200 {
			t.Fatalf("page %d: %d %s", page, got.status, got.raw)
		}
		for _, id := range hitIDs(got) {
			seen[id] = true
		}
		next, _ := got.body["next_cursor"].(string)
		if next == "" {
			break
		}
		path = "/v1/search/orders?limit=7&cursor=" + url.QueryEscape(next)
	}
	if len(seen) != len(ids)+1 {
		t.Errorf("paged through %d orders, placed %d", len(seen), len(ids)+1)
	}
	// Only agents search.
	if got := ta.do("GET", "/v1/search/orders?q=x", ta.alice, nil); got.status != 403 {
		t.Errorf("customer: %d %s", got.status, got.raw)
	}
	if got := ta.do("GET", "/v1/search/orders?q=x", "", nil); got.status != 401 {
		t.Errorf("no token: %d", got.status)
	}
}

// TestSearchInputNeverGets5xx sends empty, huge and query-syntax input:
// a clean answer or a 4xx with the error format, never a 5xx.
func TestSearchInputNeverGets5xx(t *testing.T) {
	ta := mustStart(t, withSearch(t))
	ta.putSKU("TEA-250", 1999, 1000)
	ta.place(ta.alice, "k1", orderBody(line("TEA-250", 1)))
	queries := []string{
		"", "q=", "q=%20", "q=" + url.QueryEscape(`"`), "q=" + url.QueryEscape(`\`), "q=*", "q=?", "q=" + url.QueryEscape("a:b OR c"),
		"q=" + url.QueryEscape(`{"query":{"match_all":{}}}`), "q=" + url.QueryEscape("/.*/"), "q=" + url.QueryEscape("(((("),
		"q=" + url.QueryEscape("~!@#$%^&*()_+{}|:<>?[];',./`"), "q=" + url.QueryEscape("\x00"), "q=%ff%fe",
		"q=" + strings.Repeat("a", 201), "q=" + strings.Repeat("x", 5000), "q=" + url.QueryEscape(strings.Repeat("张", 200)),
		"limit=0", "limit=101", "limit=abc", "limit=-1", "limit=99999999999999999999", "cursor=abc", "cursor=" + strings.Repeat("A", 2000),
		"status=nope", "status=paid", "since=yesterday", "since=2026-01-01", "until=2026-01-01T00:00:00Z&since=2027-01-01",
		"position=ORDERS:999999999", "position=nonsense", "q=a&q=b", "since=" + url.QueryEscape("2026-01-01T00:00:00+08:00"),
		// NUL and bytes that are not UTF-8, in every parameter and in
		// cursors forged to decode.
		"q=a%00b", "q=%ff", "status=%00", "status=%ff", "limit=%00", "limit=%ff", "since=%00", "until=%ff", "position=%00",
		"cursor=%00", "cursor=%ff", "cursor=" + forgeCursor(`s1.t.[1764072000000,"ord\u0000x"]`),
		"cursor=" + forgeCursor("s1.t.[1764072000000,\"ord\xffx\"]"), "cursor=" + forgeCursor("s1.t.[1764072000000,\"ord\x00x\"]"),
		"q=tea&cursor=" + forgeCursor(`s1.r.[1.5,1764072000000,"ord\u0000x"]`),
	}
	for _, qs := range queries {
		got := ta.do("GET", "/v1/search/orders?"+qs, ta.agent, nil)
		if got.status >= 500 {
			t.Errorf("%.80s: %d %s", qs, got.status, got.raw)
		}
		if got.status >= 400 && got.code() == "" {
			t.Errorf("%.80s: %d without an error code: %s", qs, got.status, got.raw)
		}
	}
}

// TestSearchDownLeavesCommandsAndQueriesWorking points orderd at an
// Elasticsearch that does not answer: it starts, takes commands, serves
// the PostgreSQL queries, and search answers 503 search_unavailable.
func TestSearchDownLeavesCommandsAndQueriesWorking(t *testing.T) {
	port, err := esserver.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	ta := mustStart(t, func(c *config.Config) {
		c.ElasticsearchURL = fmt.Sprintf("http://127.0.0.1:%d", port)
		c.Roles = []string{"api", "projections", "search"}
	})
	ta.putSKU("TEA-250", 1999, 1000)
	r := ta.place(ta.alice, "down-1", orderBody(line("TEA-250", 1)))
	if r.status != 202 {
		t.Fatalf("place: %d %s", r.status, r.raw)
	}
	id, pos := r.body["order_id"].(string), r.body["position"].(string)
	if got := ta.do("GET", "/v1/orders/"+id+"?position="+url.QueryEscape(pos), ta.alice, nil); got.status != 200 {
		t.Errorf("order query: %d %s", got.status, got.raw)
	}
	got := ta.do("GET", "/v1/search/orders?q=x", ta.agent, nil)
	if got.status != 503 || got.code() != "search_unavailable" {
		t.Errorf("search: %d %s", got.status, got.raw)
	}
	got = ta.do("GET", "/v1/search/orders?q=x&position="+url.QueryEscape(pos), ta.agent, nil)
	if got.status != 503 {
		t.Errorf("search with position: %d %s", got.status, got.raw)
	}
	if got := ta.do("GET", "/readyz", "", nil); got.status != 200 {
		t.Errorf("readyz: %d", got.status)
	}
	sp := projectionNamed(t, ta, "search")
	if lag, ok := sp["lag"]; sp["state"] != "unavailable" || !ok || lag != nil {
		t.Errorf("GET /v1/projections with Elasticsearch down, search: %v; want state unavailable and lag null (unknown)", sp)
	}
	if reason, _ := sp["reason"].(string); !strings.Contains(reason, "elasticsearch unavailable") {
		t.Errorf("GET /v1/projections with Elasticsearch down, search reason %q: want why", reason)
	}
}

// projectionNamed returns the entry of GET /v1/projections named name.
func projectionNamed(t *testing.T, ta *testApp, name string) map[string]any {
	t.Helper()
	r := ta.do("GET", "/v1/projections", ta.admin, nil)
	if r.status != 200 {
		t.Fatalf("GET /v1/projections: %d %s", r.status, r.raw)
	}
	list, _ := r.body["projections"].([]any)
	for _, p := range list {
		if m, ok := p.(map[string]any); ok && m["name"] == name {
			return m
		}
	}
	t.Fatalf("GET /v1/projections lists no %q: %s", name, r.raw)
	return nil
}

// seqOf is the sequence of a position "STREAM:seq".
func seqOf(t *testing.T, pos string) uint64 {
	t.Helper()
	_, n, ok := strings.Cut(pos, ":")
	seq, err := strconv.ParseUint(n, 10, 64)
	if !ok || err != nil {
		t.Fatalf("position %q", pos)
	}
	return seq
}

// TestSearchNotConfigured: without Elasticsearch the route stays in the
// API and answers 503.
func TestSearchNotConfigured(t *testing.T) {
	ta := mustStart(t)
	got := ta.do("GET", "/v1/search/orders?q=x", ta.agent, nil)
	if got.status != 503 || got.code() != "search_unavailable" {
		t.Errorf("search: %d %s", got.status, got.raw)
	}
}

// TestSearchRefusesAnIndexOfAnotherLog: an index that has applied more of
// the ORDERS stream than this log holds was built from another log; its
// projector would skip this log's commits as applied, so search answers
// 503 instead of another shop's orders.
func TestSearchRefusesAnIndexOfAnotherLog(t *testing.T) {
	u, prefix := testkit.Elasticsearch(t)
	withIndex := func(c *config.Config) {
		c.ElasticsearchURL, c.ElasticsearchPrefix = u, prefix
		c.Roles = []string{"api", "projections", "search"}
		c.ReadYourWritesWait = 8 * time.Second
	}
	first := mustStart(t, withIndex)
	first.putSKU("TEA-250", 1999, 100)
	var pos string
	for i := range 3 {
		r := first.place(first.alice, fmt.Sprint("k-", i), orderBody(line("TEA-250", 1)))
		if r.status != 202 {
			t.Fatalf("place: %d %s", r.status, r.raw)
		}
		pos = r.body["position"].(string)
	}
	if got := first.do("GET", "/v1/search/orders?position="+url.QueryEscape(pos), first.agent, nil); got.status != 200 {
		t.Fatalf("search on the first log: %d %s", got.status, got.raw)
	}
	if err := first.close(); err != nil {
		t.Fatal(err)
	}

	second := mustStart(t, withIndex) // a new data dir: a new, empty log
	// Elasticsearch is up: a 503 here is the refusal (the first answers,
	// before orderd has looked at the index, may still be served).
	waitUntil(t, "search to refuse the other log's index", func() bool {
		got := second.do("GET", "/v1/search/orders?q=x", second.agent, nil)
		return got.status == 503 && got.code() == "search_unavailable"
	})
	if sp := projectionNamed(t, second, "search"); sp["state"] != "unavailable" {
		t.Errorf("GET /v1/projections, search: %v", sp)
	}
	// Commands and the read model are not affected.
	second.putSKU("TEA-250", 1999, 100)
	for i := range 6 {
		if r := second.place(second.alice, fmt.Sprint("k-new-", i), orderBody(line("TEA-250", 1))); r.status != 202 {
			t.Fatalf("place on the second log: %d %s", r.status, r.raw)
		}
	}
	// Now the second log is longer than the index's checkpoints: only the
	// log identity the index recorded still tells them apart.
	st := second.search.Held()
	if status, err := st.Status(t.Context(), 0); err != nil || status.Log == "" {
		t.Fatalf("index status %+v, %v: want the first log's identity", status, err)
	}
	if err := st.CheckOwned(t.Context(), second.store); !errors.Is(err, search.ErrOtherLog) || !strings.Contains(err.Error(), "built from log") {
		t.Fatalf("check of the first log's index on the longer second log: %v, want it refused by identity", err)
	}
}

// TestLocalSearchPrefixIsTheLogs: the local default names its indices in
// the shared local Elasticsearch after its own log, so data dirs never
// share an index, and a restart finds its own again.
func TestLocalSearchPrefixIsTheLogs(t *testing.T) {
	dir := t.TempDir()
	a := mustStart(t, func(c *config.Config) { c.DataDir = dir })
	pa := a.localSearchPrefix()
	if err := a.close(); err != nil {
		t.Fatal(err)
	}
	again := mustStart(t, func(c *config.Config) { c.DataDir = dir })
	b := mustStart(t)
	pAgain, pb := again.localSearchPrefix(), b.localSearchPrefix()
	if !strings.HasPrefix(pa, "ordo-") || pa == "ordo-" {
		t.Fatalf("local prefix %q: want ordo-<tag>-", pa)
	}
	if pAgain != pa {
		t.Errorf("after a restart on the same data dir: %q, was %q", pAgain, pa)
	}
	if pb == pa {
		t.Errorf("two data dirs share the prefix %q", pa)
	}
}

// TestLocalSearchFollowsTheServerToAnotherPort runs orderd on a local
// Elasticsearch of the test's own (ORDO_ELASTICSEARCH=local, in a
// directory of the test's), stops that server and starts it again while
// its former port is taken, as `scripts/elasticsearch stop` and `start`
// would: while it is gone the search projection's lag is unknown, not
// 0; then orderd follows it to its new port and search works again
// without a restart.
func TestLocalSearchFollowsTheServerToAnotherPort(t *testing.T) {
	if testing.Short() {
		t.Skip("starts an Elasticsearch of its own")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()
	opts := esserver.Options{CacheDir: esserver.DefaultCacheDir(os.Getenv), Dir: filepath.Join(t.TempDir(), "es")}
	t.Cleanup(func() {
		if err := esserver.StopShared(context.Background(), opts); err != nil {
			t.Error(err)
		}
	})
	first, err := esserver.Shared(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	localSearchDir = opts.Dir
	t.Cleanup(func() { localSearchDir = "" })
	ta := mustStart(t, func(c *config.Config) {
		c.Elasticsearch = "local"
		c.Roles = []string{"api", "projections", "search"}
		c.ReadYourWritesWait = 8 * time.Second
	})
	ta.putSKU("TEA-250", 1999, 100)
	// found places an order and waits until search finds it, reading its
	// own write.
	found := func(key string, within time.Duration) {
		t.Helper()
		r := ta.place(ta.alice, key, orderBody(line("TEA-250", 1)))
		if r.status != 202 {
			t.Fatalf("place: %d %s", r.status, r.raw)
		}
		id, pos := r.body["order_id"].(string), r.body["position"].(string)
		var last response
		start := time.Now()
		testkit.Eventually(t, "search to find "+id, within, testkit.Holds(func() bool {
			last = ta.do("GET", "/v1/search/orders?q="+url.QueryEscape(id)+"&position="+url.QueryEscape(pos), ta.agent, nil)
			ids := hitIDs(last)
			return last.status == 200 && len(ids) == 1 && ids[0] == id
		}))
		t.Logf("search found %s after %s", id, time.Since(start).Round(100*time.Millisecond))
	}
	urlFile := func() string {
		b, err := os.ReadFile(filepath.Join(ta.cfg.DataDir, datadir.ElasticsearchURL))
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(b))
	}
	found("follow-1", 2*time.Minute)
	if got := urlFile(); got != first {
		t.Fatalf("elasticsearch.url %q, want %s", got, first)
	}

	if err := esserver.StopShared(ctx, opts); err != nil {
		t.Fatal(err)
	}
	// Whatever now listens on the former port (here: something that
	// accepts and hangs up) is not the server.
	if ln, err := net.Listen("tcp", strings.TrimPrefix(first, "http://")); err == nil {
		t.Cleanup(func() { ln.Close() })
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				c.Close()
			}
		}()
	} else {
		t.Logf("the former port is taken already: %v", err)
	}
	// Gone: the lag is unknown, with the reason.
	sp := projectionNamed(t, ta, "search")
	if lag, ok := sp["lag"]; sp["state"] != "unavailable" || !ok || lag != nil || sp["reason"] == "" || sp["reason"] == nil {
		t.Errorf("GET /v1/projections with the local Elasticsearch gone, search: %v; want state unavailable, lag null and a reason", sp)
	}
	if r := ta.place(ta.alice, "follow-while-down", orderBody(line("TEA-250", 1))); r.status != 202 {
		t.Fatalf("place while search is down: %d %s", r.status, r.raw)
	}

	// Started again (by this test or by orderd, whichever comes first):
	// on another port, since the former one is taken.
	second, err := esserver.Shared(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	if second == first {
		t.Fatalf("the server came back on %s, its former address: the test shows nothing", second)
	}
	found("follow-2", 3*time.Minute)
	if got := urlFile(); got != second {
		t.Errorf("elasticsearch.url %q, want the new %s", got, second)
	}
	if sp := projectionNamed(t, ta, "search"); sp["state"] == "unavailable" || sp["lag"] == nil {
		t.Errorf("GET /v1/projections after the move, search: %v", sp)
	}
}
