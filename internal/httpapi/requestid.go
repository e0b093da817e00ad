package httpapi

import (
	"crypto/rand"
	"encoding/hex"
	"net/http"
)

// Request ids and trace context. Both are stored with every commit a
// request causes (metadata.correlation_id and metadata.traceparent), so
// only values of their own format are taken from the client; anything
// else is replaced, never stored as sent.

// maxRequestID is the longest X-Request-Id taken from a client.
const maxRequestID = 64

// validRequestID reports whether id is 1 to 64 characters of ASCII
// letters, digits and . _ : - (a UUID, a ULID, "req_..." all are).
func validRequestID(id string) bool {
	if id == "" || len(id) > maxRequestID {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '_', c == ':', c == '-':
		default:
			return false
		}
	}
	return true
}

func newRequestID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return "req_" + hex.EncodeToString(b[:])
}

// traceparentLen is the length of a version 00 traceparent:
// "vv-<32 hex trace id>-<16 hex parent id>-ff".
const traceparentLen = 55

// parseTraceparent returns the traceparent to store for a received
// header value (W3C Trace Context, level 1, section 3.2), and false if
// the value is not one. Version 00 must be exactly 55 characters of
// lower-case hex and dashes, with a trace id and a parent id that are
// not all zeros. Version ff is invalid. A later version is read as the
// spec asks of a version-00 reader: at least 55 characters, a dash after
// the 55th if longer, the first 55 under the version-00 rules; only those
// 55 characters are kept.
func parseTraceparent(v string) (string, bool) {
	if len(v) < traceparentLen {
		return "", false
	}
	version := v[:2]
	if !lowerHex(version) || version == "ff" {
		return "", false
	}
	if version == "00" && len(v) != traceparentLen {
		return "", false
	}
	if len(v) > traceparentLen && v[traceparentLen] != '-' {
		return "", false
	}
	v = v[:traceparentLen]
	if v[2] != '-' || v[35] != '-' || v[52] != '-' {
		return "", false
	}
	traceID, parentID, flags := v[3:35], v[36:52], v[53:55]
	if !lowerHex(traceID) || !lowerHex(parentID) || !lowerHex(flags) || allZero(traceID) || allZero(parentID) {
		return "", false
	}
	return v, true
}

// newTraceparent starts a new trace: version 00, random ids, not sampled.
func newTraceparent() string {
	var b [24]byte
	_, _ = rand.Read(b[:])
	for allZero(hex.EncodeToString(b[:16])) || allZero(hex.EncodeToString(b[16:])) {
		_, _ = rand.Read(b[:])
	}
	return "00-" + hex.EncodeToString(b[:16]) + "-" + hex.EncodeToString(b[16:]) + "-00"
}

func lowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func allZero(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] != '0' {
			return false
		}
	}
	return true
}

// requestContext makes the request's X-Request-Id and Traceparent what
// may be stored: a valid X-Request-Id is kept, any other (or none) is
// replaced by a generated one; a valid traceparent is kept (a later
// version cut to its version-00 part), an invalid one is replaced by a
// new trace's, as the W3C spec asks, and none stays none. The response
// names the request id used (X-Request-Id) and, when the client sent a
// traceparent, the one stored (Traceparent).
func requestContext(w http.ResponseWriter, r *http.Request) {
	rid := r.Header.Get("X-Request-Id")
	if len(r.Header.Values("X-Request-Id")) != 1 || !validRequestID(rid) {
		rid = newRequestID()
		r.Header.Set("X-Request-Id", rid)
	}
	w.Header().Set("X-Request-Id", rid)
	if tps := r.Header.Values("Traceparent"); len(tps) > 0 {
		tp, ok := "", false
		if len(tps) == 1 {
			tp, ok = parseTraceparent(tps[0])
		}
		if !ok {
			tp = newTraceparent()
		}
		r.Header.Set("Traceparent", tp)
		w.Header().Set("Traceparent", tp)
	}
}
