package httpapi_test

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ordo-shop/ordo/internal/httpapi"
)

// rawServer is a real net/http server set up as orderd sets up its own
// (Boundary, ServerMaxHeaderBytes, no general OPTIONS handler) in front
// of the API.
func rawServer(t *testing.T) string {
	t.Helper()
	a := newAPI(t, nil)
	ts := httptest.NewUnstartedServer(httpapi.Boundary(a.srv))
	ts.Config.MaxHeaderBytes = httpapi.ServerMaxHeaderBytes
	ts.Config.DisableGeneralOptionsHandler = true
	ts.Start()
	t.Cleanup(ts.Close)
	return ts.Listener.Addr().String()
}

// send writes raw bytes to addr and reads the answer.
func send(t *testing.T, addr, raw string) (status int, contentType, body string) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second)) // liveness only
	// A server that refuses a request may close before it has all of
	// it; its answer is still there to read.
	_, werr := io.WriteString(conn, raw)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("reading the answer to %.60q: %v (write: %v)", raw, err, werr)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Content-Type"), string(b)
}

func get(header string) string {
	return "GET /healthz HTTP/1.1\r\nHost: ordo\r\n" + header + "Connection: close\r\n\r\n"
}

// TestServerErrorsAreJSONWhereNetHTTPAllows: headers over Ordo's limit
// but within the server's get a JSON 431; only beyond the server's limit,
// or for what net/http refuses before any handler (a bad request line,
// a missing Host, HTTP/2 on the HTTP/1 port), is the answer net/http's
// plain text, as documented in openapi.json.
func TestServerErrorsAreJSONWhereNetHTTPAllows(t *testing.T) {
	addr := rawServer(t)
	pad := func(n int) string { return "X-Pad: " + strings.Repeat("a", n) + "\r\n" }
	for _, c := range []struct {
		name   string
		raw    string
		status int
		json   string // the error code, or "" for net/http's plain text
	}{
		{"small", get(""), 200, "-"},
		{"just within Ordo's limit", get(pad(httpapi.MaxHeaderBytes - 200)), 200, "-"},
		{"over Ordo's limit", get(pad(httpapi.MaxHeaderBytes + 10)), 431, "headers_too_large"},
		{"near the server's limit", get(pad(httpapi.ServerMaxHeaderBytes - 100)), 431, "headers_too_large"},
		{"a long URL", "GET /healthz?q=" + strings.Repeat("q", httpapi.MaxHeaderBytes) + " HTTP/1.1\r\nHost: ordo\r\nConnection: close\r\n\r\n", 431, "headers_too_large"},
		{"beyond the server's limit", get(pad(httpapi.ServerMaxHeaderBytes + 8192)), 431, ""},
		{"a path that is not clean", "GET /v1//skus HTTP/1.1\r\nHost: ordo\r\nConnection: close\r\n\r\n", 307, "-"},
		{"OPTIONS *", "OPTIONS * HTTP/1.1\r\nHost: ordo\r\n\r\n", 400, "bad_request"},
		{"GET *", "GET * HTTP/1.1\r\nHost: ordo\r\n\r\n", 400, "bad_request"},
		{"bad request line", "GET\r\n\r\n", 400, ""},
		{"no Host", "GET /healthz HTTP/1.1\r\n\r\n", 400, ""},
		{"bad header name", "GET /healthz HTTP/1.1\r\nHost: ordo\r\nBad Header: x\r\n\r\n", 400, ""},
		{"HTTP/3.0", "GET /healthz HTTP/3.0\r\nHost: ordo\r\n\r\n", 505, ""},
		{"Expect other than 100-continue", get("Expect: teapot\r\n"), 417, ""},
		{"unknown Transfer-Encoding", "POST /v1/orders HTTP/1.1\r\nHost: ordo\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501, ""},
	} {
		status, ct, body := send(t, addr, c.raw)
		if status != c.status {
			t.Errorf("%s: %d %s %.200s, want %d", c.name, status, ct, body, c.status)
			continue
		}
		switch c.json {
		case "-":
		case "":
			if strings.HasPrefix(ct, "application/json") {
				t.Errorf("%s: JSON, but net/http answers this itself: %s", c.name, body)
			}
			t.Logf("%s: net/http's %d %s %q", c.name, status, ct, body)
		default:
			var e struct {
				Error struct{ Code string } `json:"error"`
			}
			if err := json.Unmarshal([]byte(body), &e); err != nil || ct != "application/json" || e.Error.Code != c.json {
				t.Errorf("%s: %d %s %.200s, want JSON %s", c.name, status, ct, body, c.json)
			}
		}
	}
}

// TestHeaderLimitSwitch measures where the JSON 431 and net/http's own
// 431 begin, in bytes of one padding header.
func TestHeaderLimitSwitch(t *testing.T) {
	addr := rawServer(t)
	first := func(lo, hi int, pred func(status int, ct string) bool) int {
		for lo < hi {
			mid := (lo + hi) / 2
			status, ct, _ := send(t, addr, get("X-Pad: "+strings.Repeat("a", mid)+"\r\n"))
			if pred(status, ct) {
				hi = mid
			} else {
				lo = mid + 1
			}
		}
		return lo
	}
	jsonAt := first(0, httpapi.ServerMaxHeaderBytes, func(s int, _ string) bool { return s == 431 })
	plainAt := first(jsonAt, 4*httpapi.ServerMaxHeaderBytes, func(s int, ct string) bool { return s == 431 && !strings.HasPrefix(ct, "application/json") })
	t.Logf("padding of %d bytes: JSON 431; from %d bytes: net/http's plain-text 431 (limits %d and %d+4096)", jsonAt, plainAt, httpapi.MaxHeaderBytes, httpapi.ServerMaxHeaderBytes)
	if jsonAt > httpapi.MaxHeaderBytes || plainAt <= httpapi.ServerMaxHeaderBytes {
		t.Fatalf("JSON 431 from %d, plain from %d", jsonAt, plainAt)
	}
}
