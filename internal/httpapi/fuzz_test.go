package httpapi

import (
	"bytes"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
)

// FuzzPlaceOrderBody feeds arbitrary bodies through the decoding and
// validation of POST /v1/orders: the outcome is a valid request or an
// error with a 4xx status and a code, never a panic or a 5xx.
func FuzzPlaceOrderBody(f *testing.F) {
	f.Add([]byte(`{"customer":{"name":"张伟","email":"z@example.com"},"lines":[{"sku":"TEA-250","qty":2}],"shipping_address":{"name":"张伟","line1":"1 Rd","city":"上海","country":"CN"}}`))
	f.Add([]byte(`{"lines":[{"sku":"TEA","qty":-1}]}`))
	f.Add([]byte(`{"lines":[{"qty":1e30}]}`))
	f.Add([]byte(`{"customer":null,"lines":null}`))
	f.Add([]byte(`{} {}`))
	f.Add([]byte("\xff\xfe"))
	s := &Server{Deps: Deps{MaxBodyBytes: 1 << 16}}
	f.Fuzz(func(t *testing.T, body []byte) {
		r := httptest.NewRequest("POST", "/v1/orders", bytes.NewReader(body))
		w := httptest.NewRecorder()
		var req placeRequest
		err := s.decode(w, r, &req, false)
		if err == nil {
			err = validatePlace(req)
		}
		if err == nil {
			for i, l := range req.Lines {
				if err = checkSKU(l.SKU, i); err != nil {
					break
				}
			}
		}
		if err == nil {
			return
		}
		var ae *apiError
		if !errors.As(err, &ae) || ae.Status < 400 || ae.Status >= 500 || ae.Code == "" {
			t.Fatalf("body %q: error %v is not a 4xx with a code", body, err)
		}
		if ae.Status == http.StatusRequestEntityTooLarge && len(body) <= 1<<16 {
			t.Fatalf("body of %d bytes called too large", len(body))
		}
	})
}
