package search_test

import (
	"testing"

	"github.com/ordo-shop/ordo/projections/search"
)

func TestIndexVersion(t *testing.T) {
	for index, want := range map[string]int{
		"ordo-orders_v3": 3, "t17-orders_v12": 12, "orders_v1": 1,
		"": 0, "ordo-orders": 0, "ordo-orders_vx": 0, "ordo-orders_v-2": 0,
	} {
		if got := search.IndexVersion(index); got != want {
			t.Errorf("IndexVersion(%q) = %d, want %d", index, got, want)
		}
	}
}
