package inventory

import (
	"fmt"
	"testing"

	"github.com/ordo-shop/ordo/events"
)

// historyOf is a SKU's log after n orders, each reserved then committed,
// with 100 reservations still open at the end: the life of a busy SKU.
func historyOf(n int) []events.Payload {
	h := []events.Payload{
		events.InventoryPriced{SKU: "HOT", Name: "Hot item", Price: events.Money{Amount: 100, Currency: "CNY"}},
		events.InventoryStockAdjusted{SKU: "HOT", Delta: int64(n + 100), OnHand: int64(n + 100)},
	}
	for i := range n + 100 {
		id := fmt.Sprintf("ord-%06d", i)
		h = append(h, events.InventoryReserved{SKU: "HOT", OrderID: id, Qty: 1})
		if i < n {
			h = append(h, events.InventoryCommitted{SKU: "HOT", OrderID: id, Qty: 1})
		}
	}
	return h
}

// BenchmarkFoldBusySKU measures rebuilding a busy SKU's state from its
// whole history, which a cold command handler does on its first command.
func BenchmarkFoldBusySKU(b *testing.B) {
	for _, n := range []int{1_000, 10_000} {
		h := historyOf(n)
		b.Run(fmt.Sprintf("orders=%d", n), func(b *testing.B) {
			for b.Loop() {
				s := Initial("HOT")
				for _, e := range h {
					s = Evolve(s, e)
				}
				if s.Sold != int64(n) {
					b.Fatalf("sold %d", s.Sold)
				}
			}
			b.ReportMetric(float64(len(h))*float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}
