package testkit

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ordo-shop/ordo/internal/local/esserver"
)

// ElasticsearchURLEnv names an Elasticsearch for the tests (the same
// variable orderd reads). When it is unset, the tests start, or reuse,
// the shared local server of internal/local/esserver (see [Elasticsearch]).
const ElasticsearchURLEnv = "ORDO_ELASTICSEARCH_URL"

var esShared struct {
	once sync.Once
	url  string
	err  error
	n    atomic.Int64
}

// Elasticsearch returns the URL of a real Elasticsearch and a name
// prefix of the test's own: every index, alias and template the test
// makes must start with it, and all of them are deleted when the test
// ends. Without ORDO_ELASTICSEARCH_URL the shared local server
// (scripts/elasticsearch) is started on first use, fetched with Maven if
// the cache lacks it; it keeps running for the next test binary. It
// skips the test under -short ([SkipShort]), and only then.
func Elasticsearch(tb testing.TB) (url, prefix string) {
	tb.Helper()
	SkipShort(tb, "Elasticsearch")
	esShared.once.Do(func() {
		if u := os.Getenv(ElasticsearchURLEnv); u != "" {
			esShared.url = strings.TrimRight(u, "/")
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		esShared.url, esShared.err = esserver.Shared(ctx, esserver.Options{CacheDir: esserver.DefaultCacheDir(os.Getenv)})
	})
	if esShared.err != nil {
		tb.Fatalf("start test elasticsearch: %v", esShared.err)
	}
	prefix = fmt.Sprintf("test-%d-%d-", os.Getpid(), esShared.n.Add(1))
	tb.Cleanup(func() { DeleteIndices(tb, esShared.url, prefix) })
	return esShared.url, prefix
}

// DeleteIndices deletes the indices and index templates whose names
// start with prefix.
func DeleteIndices(tb testing.TB, url, prefix string) {
	tb.Helper()
	for _, path := range []string{"/" + prefix + "*?expand_wildcards=all", "/_index_template/" + prefix + "*"} {
		req, err := http.NewRequest("DELETE", url+path, nil)
		if err != nil {
			tb.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			tb.Logf("clean up %s: %v", path, err)
			continue
		}
		resp.Body.Close()
	}
}
