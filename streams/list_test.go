package streams_test

import (
	"errors"
	"fmt"
	"sort"
	"testing"

	"github.com/ordo-shop/ordo/eventlog"
	"github.com/ordo-shop/ordo/streams"
)

func TestListIDs(t *testing.T) {
	s, _ := openR1(t, streams.Config{})
	ids, err := s.ListIDs(testCtx(t), eventlog.TypeOrder)
	if err != nil || len(ids) != 0 {
		t.Fatalf("empty stream: %v, %v", ids, err)
	}
	var want []string
	for i := range 40 {
		id := fmt.Sprintf("ord-%02d", i)
		want = append(want, id)
		appendChain(t, s, id, 1+i%3)
	}
	ids, err = s.ListIDs(testCtx(t), eventlog.TypeOrder)
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(ids)
	if fmt.Sprint(ids) != fmt.Sprint(want) {
		t.Fatalf("ids %v, want %v", ids, want)
	}
	if other, _ := s.ListIDs(testCtx(t), eventlog.TypePayment); len(other) != 0 {
		t.Fatalf("payments listed %v", other)
	}
	if _, err := s.ListIDs(testCtx(t), "basket"); !errors.Is(err, eventlog.ErrUnknownType) {
		t.Fatalf("unknown type: %v", err)
	}
}
