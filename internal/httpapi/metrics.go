package httpapi

import (
	"net/http"
	"time"
)

// Metrics serves h, the Prometheus exposition, at GET /metrics on a
// listener of its own (ORDO_METRICS_ADDR), apart from the API: the API's
// port never shows them, and a scraper needs no bearer token, whose
// lifetime is bounded. Every other request answers a JSON 404 or 405.
func Metrics(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path != "/metrics":
			writeJSON(w, http.StatusNotFound, errorBody{errorDetail{Code: "not_found", Message: "this listener serves only GET /metrics"}})
		case r.Method != http.MethodGet && r.Method != http.MethodHead:
			w.Header().Set("Allow", "GET, HEAD")
			writeJSON(w, http.StatusMethodNotAllowed, errorBody{errorDetail{Code: "method_not_allowed", Message: r.Method + " is not allowed here; use GET"}})
		default:
			h.ServeHTTP(w, r)
		}
	})
}

// MetricsServer is the http.Server of the metrics listener: small
// requests, short timeouts.
func MetricsServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           Metrics(h),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
	}
}
