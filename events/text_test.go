package events

import (
	"errors"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

func TestCheckText(t *testing.T) {
	cases := []struct {
		name, value string
		rule        TextRule
		reason      string // "" if the value is allowed
	}{
		{"empty", "", LineText, ""},
		{"chinese", "张伟", LineText, ""},
		{"emoji", "Tea 🍵", LineText, ""},
		{"replacement character sent as such", "a\uFFFDb", LineText, ""},
		{"at the limit", strings.Repeat("张", 200), LineText, ""},
		{"over the limit", strings.Repeat("张", 201), LineText, "is longer than 200 characters"},
		{"nul", "Zhang\x00", LineText, "contains a control character (U+0000) at character 6"},
		{"nul is never allowed", "\x00", TextRule{MaxRunes: 9, Controls: "\x00\n"}, "contains a control character (U+0000) at character 1"},
		{"nul after chinese counts characters", "张伟\x00", LineText, "contains a control character (U+0000) at character 3"},
		{"tab in a line", "a\tb", LineText, "contains a control character (U+0009) at character 2"},
		{"newline in a line", "a\nb", LineText, "contains a control character (U+000A) at character 2"},
		{"newline in a note", "a\r\n\tb", NoteText, ""},
		{"escape in a note", "a\x1bb", NoteText, "contains a control character (U+001B) at character 2"},
		{"del", "a\x7f", LineText, "contains a control character (U+007F) at character 2"},
		{"c1", "a\u0085", NoteText, "contains a control character (U+0085) at character 2"},
		{"c1 last", "\u009f", LineText, "contains a control character (U+009F) at character 1"},
		{"nbsp is not c1", "a\u00a0b", LineText, ""},
		{"invalid utf-8", "ab\xff", LineText, "is not valid UTF-8 (byte 3)"},
		{"truncated utf-8", "\xe5\xbc", LineText, "is not valid UTF-8 (byte 1)"},
		{"encoded surrogate", "\xed\xa0\x80", LineText, "is not valid UTF-8 (byte 1)"},
		{"noncharacter fffe", "a\uFFFE", LineText, "contains a Unicode noncharacter (U+FFFE) at character 2"},
		{"noncharacter fdd0", "\uFDD0", LineText, "contains a Unicode noncharacter (U+FDD0) at character 1"},
		{"noncharacter of plane 16", "\U0010FFFF", LineText, "contains a Unicode noncharacter (U+10FFFF) at character 1"},
		{"ascii token", "req_0123-abc:/.", TokenText, ""},
		{"non-ascii token", "req-é", TokenText, "contains a character outside printable ASCII (U+00E9) at character 5"},
		{"space in token", "a b", TokenText, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := CheckText("f.x", c.value, c.rule)
			if c.reason == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var te *TextError
			if !errors.As(err, &te) || te.Field != "f.x" || te.Reason != c.reason {
				t.Fatalf("got %#v, want f.x %s", err, c.reason)
			}
			if err.Error() != "f.x "+c.reason {
				t.Fatalf("message %q", err.Error())
			}
		})
	}
}

func TestCustomerAndAddressNameTheirFields(t *testing.T) {
	good := Address{Name: "张伟", Line1: "1 Rd", City: "上海", Country: "CN"}
	if err := good.CheckText("shipping_address"); err != nil {
		t.Fatal(err)
	}
	for field, edit := range map[string]func(*Address){
		"shipping_address.name":        func(a *Address) { a.Name = "\x00" },
		"shipping_address.line1":       func(a *Address) { a.Line1 = "\x00" },
		"shipping_address.line2":       func(a *Address) { a.Line2 = "\x00" },
		"shipping_address.city":        func(a *Address) { a.City = "\x00" },
		"shipping_address.region":      func(a *Address) { a.Region = "\x00" },
		"shipping_address.postal_code": func(a *Address) { a.PostalCode = "\x00" },
		"shipping_address.country":     func(a *Address) { a.Country = "C\x00" },
	} {
		a := good
		edit(&a)
		var te *TextError
		if err := a.CheckText("shipping_address"); !errors.As(err, &te) || te.Field != field {
			t.Errorf("%s: got %v", field, err)
		}
	}
	for field, c := range map[string]Customer{
		"customer.name":  {Name: "a\u0085"},
		"customer.email": {Name: "a", Email: "a@b\x00"},
		"customer.phone": {Name: "a", Phone: "\xff"},
	} {
		var te *TextError
		if err := c.CheckText("customer"); !errors.As(err, &te) || te.Field != field {
			t.Errorf("%s: got %v", field, err)
		}
	}
}

func TestValidCountry(t *testing.T) {
	for code, want := range map[string]bool{"CN": true, "de": true, "": false, "C": false, "CHN": false, "C1": false, "\x00\x00": false, "Ü": false} {
		if got := ValidCountry(code); got != want {
			t.Errorf("ValidCountry(%q) = %v", code, got)
		}
	}
}

// FuzzCheckText checks CheckText against its definition: what it accepts
// is valid UTF-8 within the length, without NUL, without control
// characters the rule does not allow and without noncharacters; what it
// refuses breaks one of those.
func FuzzCheckText(f *testing.F) {
	for _, s := range []string{"", "张伟", "a\x00b", "\xff", "a\u0085", "\uFFFE", "a\r\nb", strings.Repeat("x", 201)} {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, s string, note bool) {
		rule := LineText
		if note {
			rule = NoteText
		}
		breaks := !utf8.ValidString(s) || utf8.RuneCountInString(s) > rule.MaxRunes
		for _, r := range s {
			if r == 0 || (unicode.Is(unicode.Cc, r) && !strings.ContainsRune(rule.Controls, r)) || isNoncharacter(r) {
				breaks = true
			}
		}
		err := CheckText("f", s, rule)
		if breaks != (err != nil) {
			t.Fatalf("%q (note %v): breaks %v, CheckText %v", s, note, breaks, err)
		}
	})
}
