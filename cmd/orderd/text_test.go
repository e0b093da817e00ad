package main

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
)

// badText is one value of each kind no line of text allows, in the
// middle of otherwise good text.
var badText = map[string]string{
	"NUL":      "Zh\x00ang",
	"C1":       "Zh\u0085ang",
	"escape":   "Zh\x1bang",
	"too long": strings.Repeat("x", 300),
}

// TestUnstorableTextIsRefusedAndLeavesTheLogAlone sends every free-text
// field of every command with NUL, a C1 control, an escape and an
// over-long value, and bodies that are not UTF-8: each is refused with a
// 400 naming the field, and the log does not change.
func TestUnstorableTextIsRefusedAndLeavesTheLogAlone(t *testing.T) {
	ta := mustStart(t)
	ta.putSKU("TEA-250", 1999, 100)
	placed := ta.place(ta.alice, "k", orderBody(line("TEA-250", 1)))
	paid := ta.place(ta.alice, "k2", orderBody(line("TEA-250", 2)))
	if placed.status != 202 || paid.status != 202 {
		t.Fatalf("place: %d %s / %d %s", placed.status, placed.raw, paid.status, paid.raw)
	}
	id, paidID := placed.body["order_id"].(string), paid.body["order_id"].(string)
	ta.driveToPaid(paidID)
	before := ta.seqs()

	type request struct {
		method, path, token string
		body                any
		headers             []string
	}
	placeWith := func(obj, key, v string) request {
		b := orderBody(line("TEA-250", 1))
		b[obj].(map[string]any)[key] = v
		return request{"POST", "/v1/orders", ta.alice, b, []string{"Idempotency-Key", "k-" + obj + key}}
	}
	fields := map[string]func(v string) request{
		"customer.name":                func(v string) request { return placeWith("customer", "name", v) },
		"customer.email":               func(v string) request { return placeWith("customer", "email", "a"+v+"@example.com") },
		"customer.phone":               func(v string) request { return placeWith("customer", "phone", v) },
		"shipping_address.name":        func(v string) request { return placeWith("shipping_address", "name", v) },
		"shipping_address.line1":       func(v string) request { return placeWith("shipping_address", "line1", v) },
		"shipping_address.line2":       func(v string) request { return placeWith("shipping_address", "line2", v) },
		"shipping_address.city":        func(v string) request { return placeWith("shipping_address", "city", v) },
		"shipping_address.region":      func(v string) request { return placeWith("shipping_address", "region", v) },
		"shipping_address.postal_code": func(v string) request { return placeWith("shipping_address", "postal_code", v) },
		// A country is two letters: "C" and the bad character, or three
		// for one too long.
		"shipping_address.country": func(v string) request {
			if len(v) > 100 {
				return placeWith("shipping_address", "country", "CNX")
			}
			return placeWith("shipping_address", "country", "C"+string([]rune(v)[2]))
		},
		"reason": func(v string) request {
			return request{"POST", "/v1/orders/" + id + "/cancel", ta.alice, map[string]any{"reason": v}, nil}
		},
		"carrier": func(v string) request {
			return request{"POST", "/v1/orders/" + paidID + "/ship", ta.admin, map[string]any{"carrier": v, "tracking_number": "SF1"}, nil}
		},
		"tracking_number": func(v string) request {
			return request{"POST", "/v1/orders/" + paidID + "/ship", ta.admin, map[string]any{"carrier": "SF", "tracking_number": v}, nil}
		},
		"name": func(v string) request {
			return request{"PUT", "/v1/skus/TEA-250", ta.admin, map[string]any{"name": v, "price": map[string]any{"amount": 1999, "currency": "CNY"}, "on_hand": 100}, nil}
		},
	}
	for field, req := range fields {
		for what, v := range badText {
			t.Run(field+"/"+what, func(t *testing.T) {
				rq := req(v)
				r := ta.do(rq.method, rq.path, rq.token, rq.body, rq.headers...)
				checkFieldError(t, r, 400, "invalid_field", field)
			})
		}
	}

	// The Idempotency-Key is stored in order.placed. A client cannot send
	// a NUL in a header (net/http refuses it on both sides; see below),
	// but it can send C1 controls and bytes that are not UTF-8.
	for what, key := range map[string]string{"C1": "k\u0085", "invalid UTF-8": "k\xff", "too long": strings.Repeat("k", 256)} {
		t.Run("Idempotency-Key/"+what, func(t *testing.T) {
			r := ta.place(ta.alice, key, orderBody(line("TEA-250", 1)))
			checkFieldError(t, r, 400, "invalid_idempotency_key", "Idempotency-Key")
		})
	}
	t.Run("Idempotency-Key/NUL", func(t *testing.T) {
		if status := ta.rawPlace("k\x00ey"); status != 400 {
			t.Fatalf("NUL in the Idempotency-Key: %d, want 400", status)
		}
	})

	// Bodies that are not UTF-8, which encoding/json would quietly have
	// turned into U+FFFD.
	notUTF8 := strings.Replace(`{"customer":{"name":"Zhang","email":"z@example.com"},"lines":[{"sku":"TEA-250","qty":1}],`+
		`"shipping_address":{"name":"Zhang","line1":"1 Rd","city":"SH","country":"CN"}}`, "Zhang", "Zh\xffang", 1)
	for name, rq := range map[string]request{
		"place":  {"POST", "/v1/orders", ta.alice, []byte(notUTF8), []string{"Idempotency-Key", "k-utf8"}},
		"cancel": {"POST", "/v1/orders/" + id + "/cancel", ta.alice, []byte("{\"reason\":\"\xc0\xaf\"}"), nil},
		"ship":   {"POST", "/v1/orders/" + paidID + "/ship", ta.admin, []byte("{\"carrier\":\"SF\",\"tracking_number\":\"\xed\xa0\x80\"}"), nil},
		"sku":    {"PUT", "/v1/skus/TEA-250", ta.admin, []byte("{\"name\":\"\xfe\",\"price\":{\"amount\":1,\"currency\":\"CNY\"},\"on_hand\":1}"), nil},
	} {
		t.Run("not UTF-8/"+name, func(t *testing.T) {
			r := ta.do(rq.method, rq.path, rq.token, rq.body, rq.headers...)
			if r.status != 400 || r.code() != "invalid_utf8" {
				t.Fatalf("%d %s, want 400 invalid_utf8", r.status, r.raw)
			}
		})
	}
	if after := ta.seqs(); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatalf("refused text changed the log: %v -> %v", before, after)
	}
}

// checkFieldError checks a 4xx JSON error naming field in its field
// member and its message.
func checkFieldError(t *testing.T, r response, status int, code, field string) {
	t.Helper()
	e, _ := r.body["error"].(map[string]any)
	msg, _ := e["message"].(string)
	if r.status != status || r.code() != code || e["field"] != field || !strings.Contains(msg, field) {
		t.Fatalf("%d %s, want %d %s naming %s", r.status, r.raw, status, code, field)
	}
}

// rawPlace sends POST /v1/orders with an Idempotency-Key written on the
// wire as is (Go's client would refuse to send a control character) and
// returns the status.
func (ta *testApp) rawPlace(key string) int {
	ta.t.Helper()
	conn, err := net.Dial("tcp", ta.addr)
	if err != nil {
		ta.t.Fatal(err)
	}
	defer conn.Close()
	body := `{}`
	_, err = fmt.Fprintf(conn, "POST /v1/orders HTTP/1.1\r\nHost: ordo\r\nAuthorization: Bearer %s\r\nIdempotency-Key: %s\r\n"+
		"Content-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", ta.alice, key, len(body), body)
	if err != nil {
		ta.t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		ta.t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestBadRequestIDAndTraceparentAreNotStored: an X-Request-Id that is
// not 1-64 characters of letters, digits and . _ : - is replaced by a
// generated one, and a Traceparent that is not W3C's by a new trace's,
// rather than stored with the commit: the test reads each commit back
// from the log.
func TestBadRequestIDAndTraceparentAreNotStored(t *testing.T) {
	ta := mustStart(t)
	ta.putSKU("TEA-250", 1999, 100)
	const goodTrace = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	badIDs := []string{"req-\u0085", "a b", "'; DROP TABLE orders; --", "<script>", strings.Repeat("x", 65), "id/with/slashes", "caf\u00e9"}
	badTraces := []string{"00-\xff", "hello", strings.ToUpper(goodTrace),
		"00-00000000000000000000000000000000-b7ad6b7169203331-01", // zero trace id
		"00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01", // zero parent id
		"ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", // version ff
		goodTrace + "-extra", // version 00 is exactly 55 characters
		"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-1", // short flags
		"00_0af7651916cd43dd8448eb211c80319c_b7ad6b7169203331_01",
	}
	n := max(len(badIDs), len(badTraces))
	for i := range n {
		id, tp := badIDs[i%len(badIDs)], badTraces[i%len(badTraces)]
		r := ta.do("POST", "/v1/orders", ta.alice, orderBody(line("TEA-250", 1)),
			"Idempotency-Key", fmt.Sprint("bad-", i), "X-Request-Id", id, "Traceparent", tp)
		if r.status != 202 {
			t.Fatalf("place with X-Request-Id %q, Traceparent %q: %d %s", id, tp, r.status, r.raw)
		}
		md := ta.history(r.body["order_id"].(string))[0].Metadata
		if md.CorrelationID == id || !strings.HasPrefix(md.CorrelationID, "req_") || len(md.CorrelationID) != 28 {
			t.Errorf("X-Request-Id %q stored as correlation id %q, want a generated one", id, md.CorrelationID)
		}
		if md.Traceparent == tp || len(md.Traceparent) != 55 || !strings.HasPrefix(md.Traceparent, "00-") || strings.Contains(md.Traceparent, "0af7651916cd43dd") {
			t.Errorf("Traceparent %q stored as %q, want a new trace's", tp, md.Traceparent)
		}
	}
	ok := ta.do("POST", "/v1/orders", ta.alice, orderBody(line("TEA-250", 2)),
		"Idempotency-Key", "k2", "X-Request-Id", "client-42", "Traceparent", goodTrace)
	if md := ta.history(ok.body["order_id"].(string))[0].Metadata; md.CorrelationID != "client-42" || md.Traceparent != goodTrace {
		t.Fatalf("good headers not stored: %+v", md)
	}
	// A later version is read as version 00 reads it: its first 55
	// characters are stored.
	later := ta.do("POST", "/v1/orders", ta.alice, orderBody(line("TEA-250", 3)),
		"Idempotency-Key", "k3", "Traceparent", "01"+goodTrace[2:]+"-what-comes-next")
	if md := ta.history(later.body["order_id"].(string))[0].Metadata; md.Traceparent != "01"+goodTrace[2:] {
		t.Fatalf("a later version stored as %q", md.Traceparent)
	}
}
