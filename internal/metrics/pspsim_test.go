package metrics_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ordo-shop/ordo/internal/metrics"
)

// TestPSPSimSeries: each count is its series, read at each scrape, on
// orderd's registry and on a simulator's own.
func TestPSPSimSeries(t *testing.T) {
	counts := metrics.PSPSimCounts{Intents: 7, Events: 11, Delivered: 5, Refused: 1, Failed: 4, Abandoned: 2, Declined: 3,
		Duplicated: 6, Reordered: 8, Lost: 9, DeclineFaults: 2, Unpaid: 10}
	want := []string{
		"ordo_psp_sim_intents 7",
		"ordo_psp_sim_webhook_events_total 11",
		`ordo_psp_sim_webhook_attempts_total{result="delivered"} 5`,
		`ordo_psp_sim_webhook_attempts_total{result="refused"} 1`,
		`ordo_psp_sim_webhook_attempts_total{result="failed"} 4`,
		"ordo_psp_sim_webhooks_abandoned_total 2",
		"ordo_psp_sim_payments_declined_total 3",
		`ordo_psp_sim_faults_injected_total{kind="duplicate"} 6`,
		`ordo_psp_sim_faults_injected_total{kind="reorder"} 8`,
		`ordo_psp_sim_faults_injected_total{kind="loss"} 9`,
		`ordo_psp_sim_faults_injected_total{kind="decline"} 2`,
		`ordo_psp_sim_faults_injected_total{kind="abandon"} 10`,
	}
	m, err := metrics.New()
	if err != nil {
		t.Fatal(err)
	}
	reads := 0
	if err := m.PSPSim(func() metrics.PSPSimCounts { reads++; return counts }); err != nil {
		t.Fatal(err)
	}
	own, err := metrics.PSPSimHandler(func() metrics.PSPSimCounts { return counts })
	if err != nil {
		t.Fatal(err)
	}
	for name, h := range map[string]interface {
		ServeHTTP(w http.ResponseWriter, r *http.Request)
	}{"orderd": m.Handler(), "pspsim": own} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
		body, _ := io.ReadAll(w.Body)
		for _, line := range want {
			if !strings.Contains(string(body), line+"\n") {
				t.Errorf("%s: no %q", name, line)
			}
		}
	}
	if reads != 1 {
		t.Errorf("the counts were read %d times in one scrape, want once", reads)
	}
}
