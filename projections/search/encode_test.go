package search

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/ordo-shop/ordo/events"
)

func TestAppendDocumentMatchesEncodingJSON(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	docs := []*Document{
		{},
		{DocType: docTypeOrder, SKUs: []string{}, PhoneTails: []string{"1234"}},
		{
			DocType: docTypeOrder, OrderID: "ord-1", CustomerID: "c\"1\\", Customer: events.Customer{Name: "欧阳娜娜 <&>", Email: "A@B.c", Phone: "+86 138"},
			Name: "x\u2028y\u2029z\x00\x1f\t\n\r\b\f", Email: "a@b.c", PhoneDigits: "86138", PhoneTails: phoneTails("86138"),
			SKUs: []string{"SKU-1", "\xff\xfe bad utf8"}, Status: "cancelled", StatusReason: "why\x7f", PaymentStatus: "abandoned",
			PaymentID: "pay-1", Carrier: "SF", TrackingNumber: "T-1", TotalAmount: -42, Currency: "CNY", City: "上海",
			CreatedAt: time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC), UpdatedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("x", 3600)),
			Version: 9, Seq: 1 << 60, Deleted: true,
		},
	}
	for i := range 200 {
		d := synthDoc(r, i)
		d.StatusReason = string([]rune{rune(r.IntN(0x3000)), rune(r.IntN(0x80)), rune(r.IntN(0x2100))})
		docs = append(docs, d)
	}
	for _, d := range docs {
		want, err := json.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendDocument(nil, d); !bytes.Equal(got, want) {
			t.Fatalf("appendDocument\n got %s\nwant %s", got, want)
		}
	}
}

func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "a", "\"\\", "<>&", "\u2028\u2029", "\xff", "欧阳", "\x00\x1f\x7f"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, _ := json.Marshal(s)
		if got := appendString(nil, s); !bytes.Equal(got, want) {
			t.Fatalf("appendString(%q) = %s, want %s", s, got, want)
		}
	})
}
