package search

import (
	"strconv"
	"time"
	"unicode/utf8"
)

// appendDocument appends d as JSON, byte for byte what encoding/json's
// Marshal writes for it (TestAppendDocumentMatchesEncodingJSON), without
// reflection: the bulk bodies of a batch are built with it.
func appendDocument(b []byte, d *Document) []byte {
	b = append(b, `{"doc_type":`...)
	b = appendString(b, d.DocType)
	b = append(b, `,"order_id":`...)
	b = appendString(b, d.OrderID)
	b = append(b, `,"customer_id":`...)
	b = appendString(b, d.CustomerID)
	b = append(b, `,"customer":{"name":`...)
	b = appendString(b, d.Customer.Name)
	b = append(b, `,"email":`...)
	b = appendString(b, d.Customer.Email)
	if d.Customer.Phone != "" {
		b = append(b, `,"phone":`...)
		b = appendString(b, d.Customer.Phone)
	}
	b = append(b, `},"name":`...)
	b = appendString(b, d.Name)
	b = append(b, `,"email":`...)
	b = appendString(b, d.Email)
	if d.PhoneDigits != "" {
		b = append(b, `,"phone_digits":`...)
		b = appendString(b, d.PhoneDigits)
	}
	if len(d.PhoneTails) > 0 {
		b = append(b, `,"phone_tails":`...)
		b = appendStrings(b, d.PhoneTails)
	}
	b = append(b, `,"skus":`...)
	b = appendStrings(b, d.SKUs)
	b = append(b, `,"status":`...)
	b = appendString(b, d.Status)
	if d.StatusReason != "" {
		b = append(b, `,"status_reason":`...)
		b = appendString(b, d.StatusReason)
	}
	b = append(b, `,"payment_status":`...)
	b = appendString(b, d.PaymentStatus)
	if d.PaymentID != "" {
		b = append(b, `,"payment_id":`...)
		b = appendString(b, d.PaymentID)
	}
	if d.Carrier != "" {
		b = append(b, `,"carrier":`...)
		b = appendString(b, d.Carrier)
	}
	if d.TrackingNumber != "" {
		b = append(b, `,"tracking_number":`...)
		b = appendString(b, d.TrackingNumber)
	}
	b = append(b, `,"total_amount":`...)
	b = strconv.AppendInt(b, d.TotalAmount, 10)
	b = append(b, `,"currency":`...)
	b = appendString(b, d.Currency)
	if d.City != "" {
		b = append(b, `,"city":`...)
		b = appendString(b, d.City)
	}
	b = append(b, `,"created_at":`...)
	b = appendTime(b, d.CreatedAt)
	b = append(b, `,"updated_at":`...)
	b = appendTime(b, d.UpdatedAt)
	b = append(b, `,"version":`...)
	b = strconv.AppendUint(b, d.Version, 10)
	b = append(b, `,"seq":`...)
	b = strconv.AppendUint(b, d.Seq, 10)
	b = append(b, `,"deleted":`...)
	b = strconv.AppendBool(b, d.Deleted)
	return append(b, '}')
}

// appendStrings appends ss as a JSON array (null when nil, as
// encoding/json writes it).
func appendStrings(b []byte, ss []string) []byte {
	if ss == nil {
		return append(b, "null"...)
	}
	b = append(b, '[')
	for i, s := range ss {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, s)
	}
	return append(b, ']')
}

// appendTime appends t as encoding/json does (RFC 3339 with nanoseconds).
// Documents' times come from commits' metadata, which encoding/json
// decoded, so they are within the years it can write.
func appendTime(b []byte, t time.Time) []byte {
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string, escaped as encoding/json
// escapes it (HTML-safe, invalid UTF-8 as U+FFFD, U+2028 and U+2029
// escaped).
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
