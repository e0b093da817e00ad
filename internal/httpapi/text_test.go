package httpapi

import (
	"encoding/json"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ordo-shop/ordo/events"
	"github.com/ordo-shop/ordo/internal/psp"
)

// asAPIError returns err as an *apiError, failing the test if it is not.
func asAPIError(t *testing.T, err error) *apiError {
	t.Helper()
	var ae *apiError
	if !errors.As(err, &ae) {
		t.Fatalf("error %v is not an API error", err)
	}
	return ae
}

func TestErrorBodyNamesTheField(t *testing.T) {
	s := &Server{}
	for _, c := range []struct {
		err   error
		field string
	}{
		{checkText("customer.name", "Zha\x00ng", events.LineText), "customer.name"},
		{errorf(400, "malformed_json", "no"), ""},
	} {
		w := httptest.NewRecorder()
		s.writeError(w, httptest.NewRequest("POST", "/v1/orders", nil), c.err)
		var body map[string]map[string]any
		if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
			t.Fatal(err)
		}
		field, has := body["error"]["field"]
		if c.field == "" && has || c.field != "" && field != c.field {
			t.Errorf("%s: field %v, want %q", w.Body, field, c.field)
		}
	}
	w := httptest.NewRecorder()
	s.writeError(w, httptest.NewRequest("POST", "/v1/orders", nil), checkText("customer.name", "Zha\x00ng", events.LineText))
	want := `{"error":{"code":"invalid_field","field":"customer.name","message":"customer.name contains a control character (U+0000) at character 4"}}`
	if got := strings.TrimSpace(w.Body.String()); w.Code != 400 || got != want {
		t.Fatalf("%d %s\nwant 400 %s", w.Code, got, want)
	}
}

// TestBodyMustBeUTF8: encoding/json would turn invalid bytes into U+FFFD;
// the API refuses the body instead.
func TestBodyMustBeUTF8(t *testing.T) {
	s := &Server{Deps: Deps{MaxBodyBytes: 1 << 10}}
	for _, body := range []string{"{\"reason\":\"a\xffb\"}", "\xfe{}", "{\"reason\":\"\xed\xa0\x80\"}", "{\"reason\":\"\xe5\xbc\"}"} {
		var req cancelRequest
		err := s.decode(httptest.NewRecorder(), httptest.NewRequest("POST", "/", strings.NewReader(body)), &req, false)
		if ae := asAPIError(t, err); ae.Status != 400 || ae.Code != "invalid_utf8" {
			t.Errorf("%q: %d %s %s", body, ae.Status, ae.Code, ae.Message)
		}
	}
	var req cancelRequest
	if err := s.decode(httptest.NewRecorder(), httptest.NewRequest("POST", "/", strings.NewReader(`{"reason":"张伟 \u00e9"}`)), &req, false); err != nil || req.Reason != "张伟 é" {
		t.Fatalf("UTF-8 body: %v %q", err, req.Reason)
	}
}

// TestPlaceNamesEachBadField checks validatePlace on each field.
func TestPlaceNamesEachBadField(t *testing.T) {
	good := func() placeRequest {
		return placeRequest{
			Customer:        events.Customer{Name: "张伟", Email: "z@example.com", Phone: "+86 138"},
			Lines:           []lineRequest{{SKU: "TEA", Qty: 1}},
			ShippingAddress: events.Address{Name: "张伟", Line1: "1 Rd", City: "上海", Country: "CN"},
		}
	}
	if err := validatePlace(good()); err != nil {
		t.Fatal(err)
	}
	for field, edit := range map[string]func(*placeRequest){
		"customer.name":                func(r *placeRequest) { r.Customer.Name = "a\x00" },
		"customer.email":               func(r *placeRequest) { r.Customer.Email = "a\u0085@b" },
		"customer.phone":               func(r *placeRequest) { r.Customer.Phone = strings.Repeat("1", 33) },
		"shipping_address.name":        func(r *placeRequest) { r.ShippingAddress.Name = "a\nb" },
		"shipping_address.line1":       func(r *placeRequest) { r.ShippingAddress.Line1 = "a\tb" },
		"shipping_address.line2":       func(r *placeRequest) { r.ShippingAddress.Line2 = "\x00" },
		"shipping_address.city":        func(r *placeRequest) { r.ShippingAddress.City = "a\uFFFF" },
		"shipping_address.region":      func(r *placeRequest) { r.ShippingAddress.Region = strings.Repeat("é", 201) },
		"shipping_address.postal_code": func(r *placeRequest) { r.ShippingAddress.PostalCode = "\x1b" },
		"shipping_address.country":     func(r *placeRequest) { r.ShippingAddress.Country = "\x00\x00" },
	} {
		r := good()
		edit(&r)
		ae := asAPIError(t, validatePlace(r))
		if ae.Status != 400 || ae.Code != "invalid_field" || ae.Field != field || !strings.HasPrefix(ae.Message, field+" ") {
			t.Errorf("%s: %d %s %q %s", field, ae.Status, ae.Code, ae.Field, ae.Message)
		}
	}
}

// TestWebhookTextIsChecked: a report whose texts Ordo cannot store is
// refused with 400 naming the field.
func TestWebhookTextIsChecked(t *testing.T) {
	good := psp.Event{ID: "evt_1", Intent: psp.Intent{ID: "pi_1", Reference: "pay_1", Status: psp.StatusCaptured, CaptureRef: "ch_1"}}
	if err := checkWebhook(good); err != nil {
		t.Fatal(err)
	}
	for field, edit := range map[string]func(*psp.Event){
		"id":                    func(e *psp.Event) { e.ID = "evt_é" },
		"intent.id":             func(e *psp.Event) { e.Intent.ID = "pi\x00" },
		"intent.capture_ref":    func(e *psp.Event) { e.Intent.CaptureRef = "ch\x00" },
		"intent.failure_reason": func(e *psp.Event) { e.Intent.FailureReason = "declined\u0085" },
	} {
		ev := good
		edit(&ev)
		if ae := asAPIError(t, checkWebhook(ev)); ae.Status != 400 || ae.Code != "invalid_field" || ae.Field != field {
			t.Errorf("%s: %d %s %q", field, ae.Status, ae.Code, ae.Field)
		}
	}
}
