package event

import (
	"bytes"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// problem is a PostgreSQL-incompatibility found inside a JSON string.
type problem uint8

const (
	probNone      problem = iota
	probUTF8              // invalid UTF-8 byte sequence (raw bytes)
	probNUL               // \u0000 escape (a raw NUL is a JSON syntax error)
	probSurrogate         // \uD800-\uDFFF escape not part of a valid pair
)

func (p problem) msg() string {
	switch p {
	case probUTF8:
		return msgBadUTF8
	case probNUL:
		return msgNUL
	default:
		return msgSurrogate
	}
}

// checkString reports the first problem in raw, the content (between the
// quotes) of a syntactically valid JSON string. Invalid UTF-8 is reported in
// preference to escape problems.
func checkString(raw []byte) problem {
	if !utf8.Valid(raw) {
		return probUTF8
	}
	j := bytes.IndexByte(raw, '\\')
	if j < 0 {
		return probNone
	}
	return checkEscapes(raw[j:])
}

func hex4(b []byte) rune {
	return rune(hexVal(b[0])<<12 | hexVal(b[1])<<8 | hexVal(b[2])<<4 | hexVal(b[3]))
}

func checkEscapes(raw []byte) problem {
	for {
		j := bytes.IndexByte(raw, '\\')
		if j < 0 {
			return probNone
		}
		raw = raw[j:]
		if raw[1] != 'u' {
			raw = raw[2:]
			continue
		}
		r := hex4(raw[2:])
		raw = raw[6:]
		switch {
		case r == 0:
			return probNUL
		case 0xD800 <= r && r < 0xDC00:
			if len(raw) >= 6 && raw[0] == '\\' && raw[1] == 'u' {
				if r2 := hex4(raw[2:]); 0xDC00 <= r2 && r2 < 0xE000 {
					raw = raw[6:]
					continue
				}
			}
			return probSurrogate
		case 0xDC00 <= r && r < 0xE000:
			return probSurrogate
		}
	}
}

var unescByte = [256]byte{'"': '"', '\\': '\\', '/': '/', 'b': '\b', 'f': '\f', 'n': '\n', 'r': '\r', 't': '\t'}

// unescapeAppend appends the decoded content of a syntactically valid JSON
// string to dst. Raw bytes (even invalid UTF-8) are copied unchanged; a lone
// surrogate escape decodes to U+FFFD.
func unescapeAppend(dst, raw []byte) []byte {
	for {
		j := bytes.IndexByte(raw, '\\')
		if j < 0 {
			return append(dst, raw...)
		}
		dst = append(dst, raw[:j]...)
		raw = raw[j:]
		if raw[1] != 'u' {
			dst = append(dst, unescByte[raw[1]])
			raw = raw[2:]
			continue
		}
		r := hex4(raw[2:])
		n := 6
		if utf16.IsSurrogate(r) {
			dec := utf8.RuneError
			if r < 0xDC00 && len(raw) >= 12 && raw[6] == '\\' && raw[7] == 'u' {
				if d := utf16.DecodeRune(r, hex4(raw[8:])); d != utf8.RuneError {
					dec = d
					n = 12
				}
			}
			r = dec
		}
		dst = utf8.AppendRune(dst, r)
		raw = raw[n:]
	}
}

// lenientString decodes raw for use in an error location: valid UTF-8 is
// guaranteed (invalid sequences become U+FFFD) and the result is cut to
// MaxLocBytes (see CutLoc). Only the start of raw is decoded, so a long key
// costs no more than a short one.
func lenientString(raw []byte) string {
	// Each decoded byte takes at least one raw byte and escapes take at
	// most 12 raw bytes for 4 decoded ones: decoding raw up to the escape
	// boundary past 4*MaxLocBytes raw bytes yields more than CutLoc keeps.
	cut := len(raw)
	for i := 0; i < len(raw); {
		if i >= 4*MaxLocBytes+4 {
			cut = i
			break
		}
		switch {
		case raw[i] != '\\':
			i++
		case raw[i+1] == 'u':
			i += 6
		default:
			i += 2
		}
	}
	s := string(unescapeAppend(nil, raw[:cut]))
	if cut < len(raw) {
		s += string(truncMark) // CutLoc sees that the string was longer
	}
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	return CutLoc(s)
}

// truncMark ends a location element that was cut.
const truncMark = '…' // …

// CutLoc bounds one element of an error location: a string longer than
// MaxLocBytes keeps its first bytes (cut at a character boundary) followed
// by "…", so the element, "…" included, is at most MaxLocBytes+3 bytes.
func CutLoc(s string) string {
	if len(s) <= MaxLocBytes {
		return s
	}
	n := MaxLocBytes
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return strings.ToValidUTF8(s[:n], "\uFFFD") + string(truncMark)
}

// needsEscape marks bytes that appendJSONString must escape.
var needsEscape = func() (t [256]bool) {
	for c := 0; c < 0x20; c++ {
		t[c] = true
	}
	t['"'] = true
	t['\\'] = true
	return t
}()

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string. Only '"', '\\' and control
// characters are escaped; all other bytes (including invalid UTF-8) are
// copied verbatim so that unescapeAppend restores s exactly.
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !needsEscape[c] {
			continue
		}
		dst = append(dst, s[start:i]...)
		switch c {
		case '"', '\\':
			dst = append(dst, '\\', c)
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		default:
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
		}
		start = i + 1
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
