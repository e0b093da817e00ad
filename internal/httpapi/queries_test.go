package httpapi

import (
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/ordo-shop/ordo/projections/postgres"
)

// TestListCursorIsOnlyWhatTheAPIIssued: a cursor that decodes but that
// the API did not make (a NUL or invalid UTF-8 in the order id, a
// number written another way) is refused before it reaches PostgreSQL.
func TestListCursorIsOnlyWhatTheAPIIssued(t *testing.T) {
	issued := postgres.Cursor{CreatedAt: time.UnixMicro(1764072000123456).UTC(), OrderID: "ord_abc"}
	if got, err := parseListCursor(issued.String()); err != nil || got != issued {
		t.Fatalf("issued cursor: %v %v", got, err)
	}
	forge := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	for _, c := range []string{
		forge("1.1764072000123456.ord\x00abc"),
		forge("1.1764072000123456.ord\xffabc"),
		forge("1.1764072000123456.ord abc"),
		forge("1.+1764072000123456.ord_abc"),
		forge("1.01764072000123456.ord_abc"),
		forge("1.1764072000123456." + strings.Repeat("x", 129)),
		issued.String() + "=",
		"%00", "\x00", "\xff",
	} {
		if _, err := parseListCursor(c); err == nil {
			t.Errorf("cursor %q accepted", c)
		} else if ae := asAPIError(t, err); ae.Code != "invalid_cursor" || ae.Field != "cursor" {
			t.Errorf("cursor %q: %s %q", c, ae.Code, ae.Field)
		}
	}
}
