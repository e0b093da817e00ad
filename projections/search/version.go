package search

import (
	"strconv"
	"strings"
)

// IndexVersion is N of an index named <prefix>orders_vN, such as
// [Status.Index]; 0 if the name has no version.
func IndexVersion(index string) int {
	i := strings.LastIndex(index, "orders_v")
	if i < 0 {
		return 0
	}
	n, err := strconv.Atoi(index[i+len("orders_v"):])
	if err != nil || n < 0 {
		return 0
	}
	return n
}
