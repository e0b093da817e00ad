package orderlog

import (
	"encoding/json"
	"strconv"
	"unicode/utf8"
)

// scanner reads a JSON document front to back without building anything
// it is not asked for. It is the decoder's fast path for the commit
// envelopes the log holds (see decodeFast): every method reports false on
// anything it does not expect, and the caller then decodes the commit
// with encoding/json instead, so the scanner only needs to be right about
// what it accepts, never complete. Not safe for concurrent use.
type scanner struct {
	b []byte
	i int
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// peek returns the next non-space byte (0 at the end).
func (s *scanner) peek() byte {
	s.ws()
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

// eat consumes c, the next non-space byte.
func (s *scanner) eat(c byte) bool {
	if s.peek() != c {
		return false
	}
	s.i++
	return true
}

// rawString returns the bytes of the next string without its quotes and
// whether it holds escapes or bytes above 0x7f.
func (s *scanner) rawString() (raw []byte, special, ok bool) {
	if !s.eat('"') {
		return nil, false, false
	}
	start := s.i
	b := s.b
	for {
		i := s.i
		for i < len(b) && !stringStop[b[i]] {
			i++
		}
		s.i = i
		if i >= len(b) {
			return nil, false, false
		}
		switch c := b[i]; {
		case c == '"':
			raw = b[start:i]
			s.i++
			return raw, special, true
		case c == '\\':
			special = true
			if !validEscape(b[i+1:]) {
				return nil, false, false
			}
			s.i += 2
		case c < 0x20:
			return nil, false, false
		default: // >= 0x80
			special = true
			s.i++
		}
	}
}

// validEscape reports whether b starts with what may follow a backslash
// in a JSON string: one of "\\/bfnrt, or u and four hex digits.
func validEscape(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	switch b[0] {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		return true
	case 'u':
		if len(b) < 5 {
			return false
		}
		for _, c := range b[1:5] {
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
				return false
			}
		}
		return true
	}
	return false
}

// stringStop marks the bytes a string scan must look at: the closing
// quote, escapes, control characters (invalid in JSON strings) and
// non-ASCII (UTF-8 to check).
var stringStop = func() (t [256]bool) {
	for c := range 0x20 {
		t[c] = true
	}
	for c := 0x80; c < 256; c++ {
		t[c] = true
	}
	t['"'], t['\\'] = true, true
	return t
}()

// str decodes the next string as encoding/json does.
func (s *scanner) str() (string, bool) {
	s.ws()
	start := s.i
	raw, special, ok := s.rawString()
	if !ok {
		return "", false
	}
	if !special {
		return string(raw), true
	}
	if utf8.Valid(raw) {
		hasEscape := false
		for _, c := range raw {
			if c == '\\' {
				hasEscape = true
				break
			}
		}
		if !hasEscape {
			return string(raw), true
		}
	}
	// Escapes or invalid UTF-8: let encoding/json decide (rare).
	var v string
	if err := json.Unmarshal(s.b[start:s.i], &v); err != nil {
		return "", false
	}
	return v, true
}

// strIn decodes the next string, returning the equal string from known
// instead of a new one when there is one (no allocation).
func (s *scanner) strIn(known map[string]string) (string, bool) {
	s.ws()
	start := s.i
	raw, special, ok := s.rawString()
	if !ok {
		return "", false
	}
	if !special {
		if v, found := known[string(raw)]; found {
			return v, true
		}
		return string(raw), true
	}
	s.i = start
	return s.str()
}

// key reads an object key and the colon after it. Keys of the envelope
// are plain ASCII; anything else returns false.
func (s *scanner) key() ([]byte, bool) {
	raw, special, ok := s.rawString()
	if !ok || special || !s.eat(':') {
		return nil, false
	}
	return raw, true
}

// int reads an integer that fits int64; a fraction or exponent returns
// false (encoding/json refuses those for integer fields too).
func (s *scanner) int() (int64, bool) {
	s.ws()
	start := s.i
	if s.i < len(s.b) && s.b[s.i] == '-' {
		s.i++
	}
	digits := s.i
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		s.i++
	}
	if s.i == digits || (s.b[digits] == '0' && s.i-digits > 1) {
		return 0, false
	}
	if s.i < len(s.b) {
		switch s.b[s.i] {
		case '.', 'e', 'E':
			return 0, false
		}
	}
	n, err := strconv.ParseInt(string(s.b[start:s.i]), 10, 64)
	return n, err == nil
}

func (s *scanner) bool() (bool, bool) {
	s.ws()
	switch {
	case hasPrefix(s.b[s.i:], "true"):
		s.i += 4
		return true, true
	case hasPrefix(s.b[s.i:], "false"):
		s.i += 5
		return false, true
	}
	return false, false
}

func hasPrefix(b []byte, p string) bool {
	return len(b) >= len(p) && string(b[:len(p)]) == p
}

// object calls fn for each key of the next object; fn must consume the
// value.
func (s *scanner) object(fn func(key []byte) bool) bool {
	if !s.eat('{') {
		return false
	}
	if s.eat('}') {
		return true
	}
	for {
		s.ws()
		k, ok := s.key()
		if !ok || !fn(k) {
			return false
		}
		if s.eat(',') {
			continue
		}
		return s.eat('}')
	}
}

// array calls fn for each element of the next array; fn must consume it.
func (s *scanner) array(fn func() bool) bool {
	if !s.eat('[') {
		return false
	}
	if s.eat(']') {
		return true
	}
	for {
		if !fn() {
			return false
		}
		if s.eat(',') {
			continue
		}
		return s.eat(']')
	}
}

// skip consumes the next value of any kind.
func (s *scanner) skip() bool {
	switch s.peek() {
	case '"':
		_, _, ok := s.rawString()
		return ok
	case '{':
		return s.object(func([]byte) bool { return s.skip() })
	case '[':
		return s.array(s.skip)
	case 't', 'f':
		_, ok := s.bool()
		return ok
	case 'n':
		if hasPrefix(s.b[s.i:], "null") {
			s.i += 4
			return true
		}
		return false
	default:
		_, ok := s.int()
		return ok
	}
}

// end reports whether only white space is left.
func (s *scanner) end() bool {
	s.ws()
	return s.i == len(s.b)
}
