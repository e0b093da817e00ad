package events

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// TextRule is what one free-text field may hold. Every rule refuses
// invalid UTF-8, NUL and every other control character (C0, DEL and C1)
// except those listed in Controls, and Unicode noncharacters: the read
// models store events in PostgreSQL, which cannot store NUL or invalid
// UTF-8 at all, so a value it cannot store must never enter the log,
// where it would stay for ever and stop every projection that reads it.
// The other characters are refused because no field needs them and they
// hide in what a person reads.
type TextRule struct {
	// MaxRunes is the most characters (Unicode code points) allowed.
	MaxRunes int
	// Controls lists the control characters allowed, such as "\t\n\r"
	// for text of several lines. It never includes NUL.
	Controls string
	// ASCII restricts the value to printable ASCII (U+0020 to U+007E),
	// for values that end up in headers and identifiers.
	ASCII bool
}

// MaxLineRunes is the length limit of a line of text such as a name or
// an address line.
const MaxLineRunes = 200

// The rules of Ordo's free-text fields. docs/decisions/011-text-validation.md
// says which field has which rule and why.
var (
	// LineText is one line of text: names, address lines, city, region,
	// postal code, SKU name, carrier, tracking number.
	LineText = TextRule{MaxRunes: MaxLineRunes}
	// NoteText is a short free-form note that may have several lines: a
	// cancellation or rejection reason.
	NoteText = TextRule{MaxRunes: MaxLineRunes, Controls: "\t\n\r"}
	// EmailText is an email address (RFC 5321 caps a path at 254).
	EmailText = TextRule{MaxRunes: 254}
	// PhoneText is a phone number as the customer writes it.
	PhoneText = TextRule{MaxRunes: 32}
	// KeyText is an idempotency key.
	KeyText = TextRule{MaxRunes: 255}
	// ProviderText is a message written by the payment provider, such as
	// why it declined a payment: longer, and possibly of several lines.
	ProviderText = TextRule{MaxRunes: 1000, Controls: "\t\n\r"}
	// TokenText is an identifier from outside Ordo that is stored or
	// echoed as is: a request id, a traceparent, a webhook event id.
	TokenText = TextRule{MaxRunes: 128, ASCII: true}
	// URLText is a URL given by the payment provider (the pay page).
	URLText = TextRule{MaxRunes: 2048, ASCII: true}
	// MetadataText is a field of commit metadata: who and why.
	MetadataText = TextRule{MaxRunes: 256}
)

// TextError is a value that breaks its field's [TextRule].
type TextError struct {
	// Field names the field as its JSON path, such as "customer.name".
	Field string
	// Reason says what is wrong, such as "contains a control character
	// (U+0000) at character 4".
	Reason string
}

func (e *TextError) Error() string { return e.Field + " " + e.Reason }

// CheckText returns a *[TextError] naming field if value breaks rule, and
// nil otherwise. Positions are counted in characters from 1.
func CheckText(field, value string, rule TextRule) error {
	bad := func(format string, args ...any) error {
		return &TextError{Field: field, Reason: fmt.Sprintf(format, args...)}
	}
	n := 0
	for i, r := range value {
		n++
		switch {
		case r == utf8.RuneError && !strings.HasPrefix(value[i:], "\uFFFD"):
			return bad("is not valid UTF-8 (byte %d)", i+1)
		case isControl(r) && (r == 0 || !strings.ContainsRune(rule.Controls, r)):
			return bad("contains a control character (%U) at character %d", r, n)
		case rule.ASCII && (r < 0x20 || r > 0x7e):
			return bad("contains a character outside printable ASCII (%U) at character %d", r, n)
		case isNoncharacter(r):
			return bad("contains a Unicode noncharacter (%U) at character %d", r, n)
		case n > rule.MaxRunes:
			return bad("is longer than %d characters", rule.MaxRunes)
		}
	}
	return nil
}

// isControl reports whether r is a C0 control, DEL or a C1 control
// (Unicode general category Cc).
func isControl(r rune) bool { return r < 0x20 || (r >= 0x7f && r <= 0x9f) }

// isNoncharacter reports whether r is one of the 66 code points Unicode
// reserves for internal use: U+FDD0..U+FDEF and the last two of every
// plane.
func isNoncharacter(r rune) bool {
	return (r >= 0xfdd0 && r <= 0xfdef) || r&0xfffe == 0xfffe
}

// TextField is one field to check with [CheckTexts].
type TextField struct {
	Name  string
	Value string
	Rule  TextRule
}

// CheckTexts checks fields in order and returns the first failure.
func CheckTexts(fields ...TextField) error {
	for _, f := range fields {
		if err := CheckText(f.Name, f.Value, f.Rule); err != nil {
			return err
		}
	}
	return nil
}

// CheckText checks the customer's fields, named under prefix (such as
// "customer").
func (c Customer) CheckText(prefix string) error {
	return CheckTexts(
		TextField{prefix + ".name", c.Name, LineText},
		TextField{prefix + ".email", c.Email, EmailText},
		TextField{prefix + ".phone", c.Phone, PhoneText},
	)
}

// CheckText checks the address's fields, named under prefix (such as
// "shipping_address"). Country, if set, must be two ASCII letters.
func (a Address) CheckText(prefix string) error {
	err := CheckTexts(
		TextField{prefix + ".name", a.Name, LineText},
		TextField{prefix + ".line1", a.Line1, LineText},
		TextField{prefix + ".line2", a.Line2, LineText},
		TextField{prefix + ".city", a.City, LineText},
		TextField{prefix + ".region", a.Region, LineText},
		TextField{prefix + ".postal_code", a.PostalCode, LineText},
	)
	if err == nil && a.Country != "" && !ValidCountry(a.Country) {
		err = &TextError{Field: prefix + ".country", Reason: "must be an ISO 3166-1 alpha-2 code (two letters)"}
	}
	return err
}

// CheckText checks every field of the metadata against [MetadataText].
func (m Metadata) CheckText() error {
	return CheckTexts(
		TextField{"metadata.correlation_id", m.CorrelationID, MetadataText},
		TextField{"metadata.causation_id", m.CausationID, MetadataText},
		TextField{"metadata.actor", m.Actor, MetadataText},
		TextField{"metadata.traceparent", m.Traceparent, MetadataText},
	)
}

// ValidCountry reports whether code has the shape of an ISO 3166-1
// alpha-2 code: two ASCII letters.
func ValidCountry(code string) bool {
	if len(code) != 2 {
		return false
	}
	for i := range len(code) {
		if c := code[i] | 0x20; c < 'a' || c > 'z' {
			return false
		}
	}
	return true
}

// ValidID reports whether id can name an aggregate, a SKU or a customer:
// 1 to 128 characters of [A-Za-z0-9_-]. Anything else could inject
// subject tokens or wildcards into the log's subjects.
func ValidID(id string) bool {
	if len(id) == 0 || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}
