package event

import (
	"bytes"
	"encoding/binary"
	"strconv"
)

// This file holds the low-level JSON scanning primitives.
//
// Decoding happens in two passes over the body:
//
//  1. syntaxScan / skipValue validate the complete JSON syntax (RFC 8259,
//     strict: no NaN/Infinity, no comments, no leading zeros, no raw control
//     characters inside strings, no BOM) without decoding anything, locate the
//     "events" array and count its elements. This gives the Malformed and
//     TooLarge answers before any event is validated.
//  2. The event decoder (decode.go) then walks the events array again. Because
//     the syntax is already known to be valid, it uses the cheaper *Valid
//     helpers below, which assume well-formed input.
//
// Non-ASCII bytes are only legal inside strings, so "invalid UTF-8 outside
// of string values" is naturally a syntax error; inside strings UTF-8 validity
// is a semantic check (a ValidationError) done in pass 2.

// syntaxError describes a JSON syntax error at a byte offset.
type syntaxError struct {
	off int
	msg string
}

func (e *syntaxError) Error() string {
	return "invalid JSON at byte offset " + strconv.Itoa(e.off) + ": " + e.msg
}

func synErr(d []byte, i int, what string) *syntaxError {
	if i >= len(d) {
		return &syntaxError{off: len(d), msg: "unexpected end of input" + what}
	}
	c := d[i]
	var desc string
	switch {
	case c < 0x20:
		desc = "control character " + strconv.QuoteRune(rune(c))
	case c >= 0x80:
		desc = "non-ASCII byte 0x" + strconv.FormatUint(uint64(c), 16) + " outside a string"
	default:
		desc = "character " + strconv.QuoteRune(rune(c))
	}
	return &syntaxError{off: i, msg: "unexpected " + desc + what}
}

// wsTable marks JSON insignificant whitespace.
var wsTable = [256]bool{' ': true, '\t': true, '\n': true, '\r': true}

func skipWS(d []byte, i int) int {
	for i < len(d) && wsTable[d[i]] {
		i++
	}
	return i
}

const (
	swarLo = 0x0101010101010101
	swarHi = 0x8080808080808080
)

// hasSpecial8 reports whether any of the 8 bytes in x is < 0x20, '"' or '\\'.
// The classic "has zero byte" / "has less than" bit tricks are exact when used
// as a yes/no answer, which is all we need to skip 8 plain bytes at a time.
func hasSpecial8(x uint64) bool {
	ctl := (x - swarLo*0x20) & ^x
	q := x ^ (swarLo * '"')
	q = (q - swarLo) & ^q
	bs := x ^ (swarLo * '\\')
	bs = (bs - swarLo) & ^bs
	return (ctl|q|bs)&swarHi != 0
}

// scanString validates the string starting at d[i] == '"' and returns the
// index just past its closing quote. It checks escapes and rejects raw
// control characters; it does not check UTF-8 (a semantic check). If the
// string contains an escape or a non-ASCII byte, *special is set.
func scanString(d []byte, i int, special *bool) (int, error) {
	i++
	var acc uint64 // OR of all plain bytes, to detect non-ASCII
	for {
		for i+8 <= len(d) {
			x := binary.LittleEndian.Uint64(d[i:])
			if hasSpecial8(x) {
				break
			}
			acc |= x
			i += 8
		}
		for i < len(d) {
			c := d[i]
			if c < 0x20 || c == '"' || c == '\\' {
				break
			}
			acc |= uint64(c)
			i++
		}
		if i >= len(d) {
			return i, synErr(d, i, " inside a string")
		}
		switch d[i] {
		case '"':
			if acc&swarHi != 0 {
				*special = true
			}
			return i + 1, nil
		case '\\':
			*special = true
			i++
			if i >= len(d) {
				return i, synErr(d, i, " inside a string")
			}
			switch d[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i++
			case 'u':
				if i+5 > len(d) {
					return len(d), synErr(d, len(d), " in a \\u escape")
				}
				for k := 1; k <= 4; k++ {
					if hexVal(d[i+k]) < 0 {
						return i + k, synErr(d, i+k, " in a \\u escape (want a hex digit)")
					}
				}
				i += 5
			default:
				return i, synErr(d, i, " after a backslash (invalid escape)")
			}
		default:
			return i, synErr(d, i, " inside a string (control characters must be escaped)")
		}
	}
}

func hexVal(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c-'a') + 10
	case 'A' <= c && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// scanNumber validates a JSON number starting at d[i] and returns its end.
func scanNumber(d []byte, i int) (int, error) {
	if d[i] == '-' {
		i++
	}
	if i >= len(d) {
		return i, synErr(d, i, " in a number")
	}
	switch {
	case d[i] == '0':
		i++
	case '1' <= d[i] && d[i] <= '9':
		i++
		for i < len(d) && isDigit(d[i]) {
			i++
		}
	default:
		return i, synErr(d, i, " in a number")
	}
	if i < len(d) && d[i] == '.' {
		i++
		if i >= len(d) || !isDigit(d[i]) {
			return i, synErr(d, i, " in a number (want a digit after '.')")
		}
		for i < len(d) && isDigit(d[i]) {
			i++
		}
	}
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		i++
		if i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		if i >= len(d) || !isDigit(d[i]) {
			return i, synErr(d, i, " in a number exponent")
		}
		for i < len(d) && isDigit(d[i]) {
			i++
		}
	}
	return i, nil
}

func scanLiteral(d []byte, i int, lit string) (int, error) {
	if len(d)-i >= len(lit) && string(d[i:i+len(lit)]) == lit {
		return i + len(lit), nil
	}
	// Find the first mismatching byte for the message.
	k := 0
	for k < len(lit) && i+k < len(d) && d[i+k] == lit[k] {
		k++
	}
	return i + k, synErr(d, i+k, " (expected "+lit+")")
}

// skipValue validates one JSON value starting at or after d[i] (leading
// whitespace allowed) and returns the index just past it. It is iterative:
// nesting depth is bounded only by the input size.
func skipValue(d []byte, i int, special *bool) (int, error) {
	// stack holds one byte per open container: '{' or '['. Depths up to 128
	// use the local array and do not allocate.
	var stackBuf [128]byte
	stack := stackBuf[:0]
	var err error
	const (
		wantValue = iota
		afterValue
		wantKey
	)
	state := wantValue
	for {
		switch state {
		case wantValue:
			i = skipWS(d, i)
			if i >= len(d) {
				return i, synErr(d, i, " (expected a value)")
			}
			switch c := d[i]; {
			case c == '{':
				i = skipWS(d, i+1)
				if i < len(d) && d[i] == '}' {
					i++
					state = afterValue
					continue
				}
				stack = append(stack, '{')
				state = wantKey
				continue
			case c == '[':
				i = skipWS(d, i+1)
				if i < len(d) && d[i] == ']' {
					i++
					state = afterValue
					continue
				}
				stack = append(stack, '[')
				continue // wantValue
			case c == '"':
				i, err = scanString(d, i, special)
			case c == 't':
				i, err = scanLiteral(d, i, "true")
			case c == 'f':
				i, err = scanLiteral(d, i, "false")
			case c == 'n':
				i, err = scanLiteral(d, i, "null")
			case c == '-' || isDigit(c):
				i, err = scanNumber(d, i)
			default:
				return i, synErr(d, i, " (expected a value)")
			}
			if err != nil {
				return i, err
			}
			state = afterValue
		case afterValue:
			if len(stack) == 0 {
				return i, nil
			}
			i = skipWS(d, i)
			if i >= len(d) {
				return i, synErr(d, i, "")
			}
			if stack[len(stack)-1] == '{' {
				switch d[i] {
				case ',':
					i++
					state = wantKey
				case '}':
					i++
					stack = stack[:len(stack)-1]
				default:
					return i, synErr(d, i, " (expected ',' or '}')")
				}
			} else {
				switch d[i] {
				case ',':
					i++
					state = wantValue
				case ']':
					i++
					stack = stack[:len(stack)-1]
				default:
					return i, synErr(d, i, " (expected ',' or ']')")
				}
			}
		case wantKey:
			i = skipWS(d, i)
			if i >= len(d) || d[i] != '"' {
				return i, synErr(d, i, " (expected a string object key)")
			}
			if i, err = scanString(d, i, special); err != nil {
				return i, err
			}
			i = skipWS(d, i)
			if i >= len(d) || d[i] != ':' {
				return i, synErr(d, i, " (expected ':' after object key)")
			}
			i++
			state = wantValue
		}
	}
}

// ---- helpers for input already known to be syntactically valid ----

// skipStringValid returns the index just past the string starting at
// d[i] == '"'. The input must be valid.
func skipStringValid(d []byte, i int) int {
	i++
	for {
		j := bytes.IndexByte(d[i:], '"')
		if j < 0 { // cannot happen for valid input; be defensive
			return len(d)
		}
		i += j
		// Count the backslashes immediately before the quote.
		k := i - 1
		for d[k] == '\\' {
			k--
		}
		if (i-1-k)%2 == 0 {
			return i + 1
		}
		i++
	}
}

// skipValueValid returns the index just past the value at d[i] (no leading
// whitespace). The input must be valid.
func skipValueValid(d []byte, i int) int {
	switch c := d[i]; c {
	case '"':
		return skipStringValid(d, i)
	case '{', '[':
		depth := 0
		for i < len(d) {
			switch d[i] {
			case '"':
				i = skipStringValid(d, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return i
	case 't', 'n':
		return i + 4
	case 'f':
		return i + 5
	default:
		i++
		for i < len(d) {
			c := d[i]
			if isDigit(c) || c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-' {
				i++
				continue
			}
			break
		}
		return i
	}
}

// appendCompact appends the valid JSON value src to dst without insignificant
// whitespace; strings and all other tokens are copied byte for byte.
func appendCompact(dst, src []byte) []byte {
	start := 0
	for i := 0; i < len(src); {
		c := src[i]
		switch {
		case c == '"':
			i = skipStringValid(src, i)
		case wsTable[c]:
			dst = append(dst, src[start:i]...)
			i++
			for i < len(src) && wsTable[src[i]] {
				i++
			}
			start = i
		default:
			i++
		}
	}
	return append(dst, src[start:]...)
}
