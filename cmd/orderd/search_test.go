package main

import (
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/ordo-shop/ordo/internal/config"
	"github.com/ordo-shop/ordo/internal/esserver"
	"github.com/ordo-shop/ordo/internal/testkit"
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
