package httpapi

import (
	"fmt"
	"net/http"
)

// Errors that net/http writes itself. Go's HTTP server answers some
// requests before any handler sees them, in plain text (net/http
// server.go, conn.serve): a request line and header block larger than
// Server.MaxHeaderBytes + 4096 (431), a malformed request line or header,
// a missing or malformed Host (400), an HTTP version other than 1.x
// (505), an unknown Transfer-Encoding (501), an Expect other than
// 100-continue (417, no body). Those cannot be JSON. What a handler can
// see is made JSON here: the server's limit is set above Ordo's
// ([ServerMaxHeaderBytes]), and [Boundary] answers a request whose
// headers exceed Ordo's own limit ([MaxHeaderBytes]) with a JSON 431;
// a request for "*" (OPTIONS * or any other), which ServeMux or the
// server's general OPTIONS handler would answer with an empty 400 or
// 200, gets a JSON 400.

// MaxHeaderBytes is Ordo's limit on a request's line and headers,
// counted as [headerBytes] does.
const MaxHeaderBytes = 64 << 10

// ServerMaxHeaderBytes is what orderd sets as http.Server.MaxHeaderBytes:
// requests between Ordo's limit and this one reach [Boundary] and get a
// JSON 431; only larger ones get net/http's plain-text 431.
const ServerMaxHeaderBytes = 2 * MaxHeaderBytes

// Boundary answers, before next sees them, requests that net/http
// parsed but Ordo refuses: headers over [MaxHeaderBytes] (431
// headers_too_large) and the request target "*" (400 bad_request). Set
// http.Server.MaxHeaderBytes to [ServerMaxHeaderBytes] and
// DisableGeneralOptionsHandler, so that those requests reach it.
func Boundary(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n := headerBytes(r); n > MaxHeaderBytes {
			w.Header().Set("Connection", "close")
			writeJSON(w, http.StatusRequestHeaderFieldsTooLarge, errorBody{errorDetail{Code: "headers_too_large",
				Message: fmt.Sprintf("the request line and headers are %d bytes; at most %d are accepted", n, MaxHeaderBytes)}})
			return
		}
		if r.RequestURI == "*" {
			w.Header().Set("Connection", "close")
			writeJSON(w, http.StatusBadRequest, errorBody{errorDetail{Code: "bad_request", Message: "the request target * is not served"}})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// headerBytes is the size of r's request line and header lines as sent,
// with one space after each colon: what the server read for them, less
// optional whitespace.
func headerBytes(r *http.Request) int {
	n := len(r.Method) + 1 + len(r.RequestURI) + 1 + len(r.Proto) + 2
	if r.Host != "" {
		n += len("Host: ") + len(r.Host) + 2
	}
	for k, vs := range r.Header {
		for _, v := range vs {
			n += len(k) + 2 + len(v) + 2
		}
	}
	return n + 2
}
