package events

import (
	"errors"
	"math"
	"strings"
	"testing"
)

func TestMinorUnits(t *testing.T) {
	for cur, want := range map[string]int{
		"JPY": 0, "KRW": 0, "VND": 0, "CLP": 0, "ISK": 0,
		"BHD": 3, "KWD": 3, "OMR": 3, "JOD": 3, "TND": 3, "IQD": 3, "LYD": 3,
		"EUR": 2, "USD": 2, "CNY": 2, "GBP": 2, "": 2,
	} {
		if got := MinorUnits(cur); got != want {
			t.Errorf("MinorUnits(%q) = %d, want %d", cur, got, want)
		}
	}
}

func TestValidCurrency(t *testing.T) {
	for code, want := range map[string]bool{
		"EUR": true, "JPY": true, "XAU": true,
		"": false, "eur": false, "EU": false, "EURO": false, "E1R": false, "ÉUR": false, " EU": false,
	} {
		if got := ValidCurrency(code); got != want {
			t.Errorf("ValidCurrency(%q) = %t, want %t", code, got, want)
		}
	}
}

func TestParseMoney(t *testing.T) {
	tests := []struct {
		in, cur string
		want    int64
	}{
		{"19.99", "CNY", 1999},
		{"-19.99", "CNY", -1999},
		{"-0", "CNY", 0},
		{"0.00", "EUR", 0},
		{"007.50", "EUR", 750},
		{"0.1", "EUR", 10},
		{"1", "KWD", 1000},
		{"15", "JPY", 15},
		{"123e-2", "EUR", 123},
		{"1.23e+2", "EUR", 12300},
		{"0e400", "EUR", 0},
		{"1000000000000000000e-2", "EUR", 1000000000000000000},
		{"-92233720368547758.08", "EUR", math.MinInt64},
		{"92233720368547758.07", "EUR", math.MaxInt64},
		{"9223372036854775807", "JPY", math.MaxInt64},
		{"9.223", "KWD", 9223},
	}
	for _, tt := range tests {
		got, err := ParseMoney(tt.in, tt.cur)
		if err != nil {
			t.Errorf("ParseMoney(%q, %s): %v", tt.in, tt.cur, err)
			continue
		}
		if got != (Money{Amount: tt.want, Currency: tt.cur}) {
			t.Errorf("ParseMoney(%q, %s) = %v, want %d", tt.in, tt.cur, got, tt.want)
		}
	}

	for _, in := range []string{
		"", "-", "+1", ".5", "5.", "1.2.3", "1,5", "1_000", " 1", "1 ", "0x10", "abc", "NaN", "Inf",
		"1e", "1e+", "1e-", "1e+-2", "1e1.5", "1e99999", "-1e-99999",
		"19.999", "0.001", "1e-3", "92233720368547758.08", "-92233720368547758.09", "1e17", "10000000000000000000",
	} {
		if m, err := ParseMoney(in, "EUR"); !errors.Is(err, ErrInvalidMoney) {
			t.Errorf("ParseMoney(%q, EUR) = %v, %v; want ErrInvalidMoney", in, m, err)
		}
	}
	for _, tt := range []struct{ in, cur string }{
		{"1", ""}, {"1", "eur"}, {"1", "EURO"},
		{"1.5", "JPY"}, {"9.223372036854775807", "KWD"}, {"0.0001", "BHD"},
	} {
		if m, err := ParseMoney(tt.in, tt.cur); !errors.Is(err, ErrInvalidMoney) {
			t.Errorf("ParseMoney(%q, %q) = %v, %v; want ErrInvalidMoney", tt.in, tt.cur, m, err)
		}
	}
}

func TestMoneyString(t *testing.T) {
	tests := []struct {
		m    Money
		want string
	}{
		{Money{1999, "CNY"}, "19.99 CNY"},
		{Money{5, "CNY"}, "0.05 CNY"},
		{Money{-5, "CNY"}, "-0.05 CNY"},
		{Money{0, "EUR"}, "0.00 EUR"},
		{Money{1500, "JPY"}, "1500 JPY"},
		{Money{-1500, "JPY"}, "-1500 JPY"},
		{Money{1234, "KWD"}, "1.234 KWD"},
		{Money{7, "KWD"}, "0.007 KWD"},
		{Money{1999, ""}, "19.99"},
		{Money{math.MinInt64, "EUR"}, "-92233720368547758.08 EUR"},
		{Money{math.MaxInt64, "EUR"}, "92233720368547758.07 EUR"},
	}
	for _, tt := range tests {
		if got := tt.m.String(); got != tt.want {
			t.Errorf("%#v.String() = %q, want %q", tt.m, got, tt.want)
		}
	}
}

// TestMoneyStringParses checks that String and ParseMoney agree.
func TestMoneyStringParses(t *testing.T) {
	amounts := []int64{0, 1, -1, 9, 10, 99, 100, 101, 1999, -123456, 1 << 40, math.MaxInt64, math.MinInt64}
	for _, cur := range []string{"EUR", "JPY", "KWD"} {
		for _, a := range amounts {
			m := Money{Amount: a, Currency: cur}
			text, _ := strings.CutSuffix(m.String(), " "+cur)
			got, err := ParseMoney(text, cur)
			if err != nil || got != m {
				t.Errorf("ParseMoney(%q) = %v, %v; want %v", text, got, err, m)
			}
		}
	}
}
