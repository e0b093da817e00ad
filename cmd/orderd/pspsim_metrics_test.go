//go:build !production

package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ordo-shop/ordo/events"
	"github.com/ordo-shop/ordo/internal/config"
	"github.com/ordo-shop/ordo/internal/psp"
	"github.com/ordo-shop/ordo/internal/testkit"
)

// TestSimulatorCountersOnTheMetricsListener: the in-process simulator's
// counters are ordo_psp_sim_* series on orderd's metrics listener, and
// they count: with the loss fault every approved intent's webhook is
// dropped and counted.
func TestSimulatorCountersOnTheMetricsListener(t *testing.T) {
	ta := mustStart(t, func(c *config.Config) { c.PSPFaults = "loss=1" })
	const n = 3
	for i := range n {
		ref := fmt.Sprintf("pay_metrics_%d", i)
		if _, err := ta.pay.client.CreateIntent(t.Context(), psp.CreateIntentRequest{Reference: ref, OrderID: "ord_" + ref,
			Amount: events.Money{Amount: 1999, Currency: "CNY"}}, ref+":create"); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{
		fmt.Sprintf(`ordo_psp_sim_faults_injected_total{kind="loss"} %d`, n),
		fmt.Sprintf(`ordo_psp_sim_webhook_events_total %d`, n),
		fmt.Sprintf(`ordo_psp_sim_intents %d`, n),
		`ordo_psp_sim_faults_injected_total{kind="duplicate"} 0`,
		`ordo_psp_sim_webhook_attempts_total{result="delivered"} 0`,
	}
	testkit.Eventually(t, "the simulator's counters", 30*time.Second, func() (bool, error) {
		text := string(ta.metrics().raw)
		for _, w := range want {
			if !strings.Contains(text, w) {
				return false, fmt.Errorf("no %s", w)
			}
		}
		return true, nil
	})
}
