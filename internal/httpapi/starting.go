package httpapi

import "net/http"

// Starting is what an instance serves while it waits for its
// dependencies at start: GET /healthz answers 200 (the process lives and
// must not be restarted for waiting), /readyz and every other request 503
// "starting" with the message waitingFor returns, which names the
// dependency it waits for and why. A load balancer keeps it out, and an
// operator sees what it waits for without reading its log.
func Starting(waitingFor func() string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			writeJSON(w, http.StatusOK, statusBody{Status: "ok"})
			return
		}
		w.Header().Set("Retry-After", "1")
		writeJSON(w, http.StatusServiceUnavailable, errorBody{errorDetail{Code: "starting", Message: "orderd is starting: " + waitingFor()}})
	})
}
