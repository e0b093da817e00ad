package main

import (
	"regexp"
	"strings"
	"testing"

	"github.com/ordo-shop/ordo/internal/local/datadir"
	"github.com/ordo-shop/ordo/internal/testkit"
)

func TestProjectionsRebuildSearch(t *testing.T) {
	dir, _ := seedDataDir(t, true)
	esURL, prefix := testkit.Elasticsearch(t)
	env := map[string]string{"ORDO_DATA_DIR": dir, "ORDO_ELASTICSEARCH_URL": esURL, "ORDO_ELASTICSEARCH_PREFIX": prefix}
	code, out, errOut := orderctl(t, env, "projections", "rebuild", "search")
	if code != 0 || !strings.Contains(out, "now points at "+prefix+"orders_v2 (was "+prefix+"orders_v1)") {
		t.Fatalf("rebuild: exit %d\n%s\n%s", code, out, errOut)
	}
	// Through the elasticsearch.url a local orderd would have written,
	// flags after the arguments.
	if err := datadir.WriteFile(dir, "elasticsearch.url", []byte(esURL+"\n")); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = orderctl(t, map[string]string{"ORDO_DATA_DIR": dir}, "projections", "rebuild", "search", "--elasticsearch-prefix", prefix, "--json")
	if code != 0 || !strings.Contains(out, `"to":"`+prefix+`orders_v3"`) {
		t.Fatalf("second rebuild: exit %d\n%s\n%s", code, out, errOut)
	}
	// status lists the search projection beside the read model: the
	// rebuilt index, caught up with the log.
	pg := testkit.Postgres(t)
	code, out, errOut = orderctl(t, map[string]string{"ORDO_DATA_DIR": dir, "ORDO_POSTGRES_URL": pg}, "projections", "status", "--elasticsearch-prefix", prefix, "--json")
	if code != 0 || !strings.Contains(out, `"name":"search","state":"live"`) || !strings.Contains(out, `"version":3`) {
		t.Fatalf("status: exit %d\n%s\n%s", code, out, errOut)
	}
	code, out, errOut = orderctl(t, map[string]string{"ORDO_DATA_DIR": dir, "ORDO_POSTGRES_URL": pg,
		"ORDO_ELASTICSEARCH_URL": "http://127.0.0.1:1"}, "projections", "status", "--json")
	if code != 0 || !strings.Contains(out, `"name":"search","state":"unavailable"`) || !strings.Contains(out, `"lag":null,"reason":"`) || !strings.Contains(out, "elasticsearch unavailable") {
		t.Fatalf("status with Elasticsearch down: exit %d\n%s\n%s", code, out, errOut)
	}
	// In text: the lag is unknown, not 0, and why.
	code, out, errOut = orderctl(t, map[string]string{"ORDO_DATA_DIR": dir, "ORDO_POSTGRES_URL": pg,
		"ORDO_ELASTICSEARCH_URL": "http://127.0.0.1:1"}, "projections", "status")
	if code != 0 || !regexp.MustCompile(`search\s+unavailable\s+-\s+-\s+\d+\s+unknown\n`).MatchString(out) || !regexp.MustCompile(`search: lag unknown: .*elasticsearch unavailable`).MatchString(out) {
		t.Fatalf("status table with Elasticsearch down: exit %d\n%s\n%s", code, out, errOut)
	}
	code, _, errOut = orderctl(t, map[string]string{"ORDO_DATA_DIR": t.TempDir()}, "projections", "rebuild", "search")
	if code == 0 || !strings.Contains(errOut, "no Elasticsearch") {
		t.Fatalf("without Elasticsearch: exit %d: %s", code, errOut)
	}
}
