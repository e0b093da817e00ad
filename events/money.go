package events

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Money is an amount in the minor units of a currency (cents for EUR,
// yen for JPY, fils for KWD) with its ISO 4217 code. Amounts are integers:
// Ordo never holds money in a float.
type Money struct {
	Amount   int64  `json:"amount"`
	Currency string `json:"currency"`
}

// String formats m in major units with its currency, such as "19.99 CNY"
// or "1500 JPY".
func (m Money) String() string {
	units := MinorUnits(m.Currency)
	sign := ""
	mag := uint64(m.Amount)
	if m.Amount < 0 {
		sign = "-"
		mag = -mag // two's complement: also right for math.MinInt64
	}
	s := strconv.FormatUint(mag, 10)
	if units > 0 {
		if len(s) <= units {
			s = strings.Repeat("0", units-len(s)+1) + s
		}
		s = s[:len(s)-units] + "." + s[len(s)-units:]
	}
	if m.Currency == "" {
		return sign + s
	}
	return sign + s + " " + m.Currency
}

// MinorUnits returns the number of decimal places of an ISO 4217 currency:
// 0 for JPY, KRW, VND, CLP and ISK; 3 for BHD, KWD, OMR, JOD, TND, IQD and
// LYD; 2 for every other code.
func MinorUnits(currency string) int {
	switch currency {
	case "JPY", "KRW", "VND", "CLP", "ISK":
		return 0
	case "BHD", "KWD", "OMR", "JOD", "TND", "IQD", "LYD":
		return 3
	default:
		return 2
	}
}

// ValidCurrency reports whether code has the shape of an ISO 4217 code:
// exactly three upper-case ASCII letters.
func ValidCurrency(code string) bool {
	if len(code) != 3 {
		return false
	}
	for i := range len(code) {
		if code[i] < 'A' || code[i] > 'Z' {
			return false
		}
	}
	return true
}

// ErrInvalidMoney is returned by [ParseMoney] for text that is not an
// exact amount of the currency.
var ErrInvalidMoney = errors.New("invalid money amount")

// maxExponent bounds the exponent ParseMoney accepts; anything larger
// cannot fit an int64 amount anyway and is refused before any work.
const maxExponent = 400

// ParseMoney parses a decimal amount in major units, such as "19.99",
// "-0.5" or "1.999e1" (the JSON number syntax, also accepted as a plain
// decimal string), into [Money] in the currency's minor units. It works on
// the text, never through a float, so "0.29" is exactly 29 cents.
//
// It refuses an invalid currency code, a malformed number, a result that
// does not fit an int64 and a value with more significant fractional
// digits than the currency has ([MinorUnits]): "19.999" CNY is an error,
// while "19.990" CNY is 1999 because its extra digit is a zero and no
// precision is lost. Errors wrap [ErrInvalidMoney].
func ParseMoney(amount, currency string) (Money, error) {
	fail := func(why string) (Money, error) {
		return Money{}, fmt.Errorf("%w: %q %s: %s", ErrInvalidMoney, amount, currency, why)
	}
	if !ValidCurrency(currency) {
		return fail("currency must be three upper-case letters")
	}
	s := amount
	neg := strings.HasPrefix(s, "-")
	if neg {
		s = s[1:]
	}
	mant, exp := s, 0
	if i := strings.IndexAny(s, "eE"); i >= 0 {
		mant = s[:i]
		e := s[i+1:]
		expNeg := strings.HasPrefix(e, "-")
		if expNeg || strings.HasPrefix(e, "+") {
			e = e[1:]
		}
		if !isDigits(e) {
			return fail("malformed exponent")
		}
		e = strings.TrimLeft(e, "0")
		if len(e) > 4 {
			return fail("exponent out of range")
		}
		n := 0
		for i := range len(e) {
			n = n*10 + int(e[i]-'0')
		}
		if n > maxExponent {
			return fail("exponent out of range")
		}
		if expNeg {
			n = -n
		}
		exp = n
	}
	intPart, fracPart, hasPoint := strings.Cut(mant, ".")
	if intPart == "" || !isDigits(intPart) || (hasPoint && (fracPart == "" || !isDigits(fracPart))) {
		return fail("not a decimal number")
	}
	// The value is digits × 10^-(len(fracPart)-exp); shift it to minor units.
	digits := intPart + fracPart
	shift := MinorUnits(currency) - len(fracPart) + exp
	if shift < 0 {
		drop := -shift
		if drop > len(digits) {
			drop = len(digits)
		}
		if strings.Trim(digits[len(digits)-drop:], "0") != "" {
			return fail(fmt.Sprintf("%s allows at most %d decimal places", currency, MinorUnits(currency)))
		}
		digits = digits[:len(digits)-drop]
		shift = 0
	}
	digits = strings.TrimLeft(digits, "0")
	if digits == "" {
		return Money{Amount: 0, Currency: currency}, nil
	}
	if len(digits)+shift > 19 {
		return fail("amount out of range")
	}
	// At most 19 digits: always fits a uint64, checked against int64 below.
	var v uint64
	for i := range len(digits) + shift {
		v *= 10
		if i < len(digits) {
			v += uint64(digits[i] - '0')
		}
	}
	if neg {
		if v > 1<<63 {
			return fail("amount out of range")
		}
		return Money{Amount: int64(-v), Currency: currency}, nil
	}
	if v > math.MaxInt64 {
		return fail("amount out of range")
	}
	return Money{Amount: int64(v), Currency: currency}, nil
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
