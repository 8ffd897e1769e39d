// Package event is ChronicleWeaver's event model and /publish request
// validation.
//
// DecodeRequest is API-compatible with the original FastAPI/pydantic service:
// validation problems are reported as pydantic-style error entries
// ({"loc": [...], "msg": "...", "type": "..."}) in a *ValidationError;
// malformed bodies and oversized batches are a *RequestError of kind
// Malformed or TooLarge. service/api maps each to its HTTP status.
//
// Beyond the pydantic model, the validator rejects everything PostgreSQL would
// refuse later (text columns, jsonb payload, timestamptz): invalid UTF-8, the
// NUL character, lone UTF-16 surrogate escapes, over-deep payloads and JSON
// numbers that do not fit PostgreSQL's numeric type. See the README-style
// comments on DecodeRequest and the constants below for the exact rules.
package event

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"
)

// Event is one validated event.
//
// Events returned by DecodeRequest and UnmarshalBatch never alias the input,
// but the events of one call share two backing allocations: one string holding
// every EventID/Topic/Source and one byte slice holding every Payload (each
// Payload is capacity-limited, so appending to it cannot clobber another).
// Keeping any one of these values alive keeps the whole batch's strings (or
// payloads) alive; copy with strings.Clone / bytes.Clone before storing them
// in long-lived structures if that matters.
type Event struct {
	EventID   string          `json:"event_id"`
	Topic     string          `json:"topic"`
	Source    string          `json:"source"`
	Timestamp time.Time       `json:"timestamp"` // parsed, converted to UTC
	Payload   json.RawMessage `json:"payload"`   // the payload object, compacted (insignificant whitespace removed), otherwise verbatim
}

// Key is the deduplication key of an event.
type Key struct{ Topic, EventID string }

// Key returns the deduplication key (topic, event_id).
func (e *Event) Key() Key { return Key{Topic: e.Topic, EventID: e.EventID} }

// Field limits (bytes of the decoded UTF-8 string).
const (
	MinEventIDBytes = 1
	MaxEventIDBytes = 1024
	MaxTopicBytes   = 255
	MaxSourceBytes  = 255

	// MaxErrors caps the number of problems looked for: validation stops
	// at the 1000th.
	MaxErrors = 1000
	// MaxErrorBytes caps the encoded size of the listed errors (JSON,
	// without HTML escaping): the errors past it are not listed but counted
	// in a last entry of type too_many_errors ("...and N more"). With
	// MaxLocBytes it bounds a 422 body to about 17 KiB whatever the request.
	MaxErrorBytes = 16 << 10
	// MaxLocBytes caps each string element of an error location (a payload
	// key can be 64 KiB long): longer ones are cut and end with "…".
	MaxLocBytes = 64

	DefaultMaxBatch        = 10000
	DefaultMaxPayloadBytes = 64 << 10
	DefaultMaxDepth        = 64
)

// Limits are the configurable request limits. A zero or negative field means
// "use the default", so Limits{} behaves like DefaultLimits().
type Limits struct {
	MaxBatch        int // maximum number of events per request (default 10000); more -> TooLarge
	MaxPayloadBytes int // maximum raw (as sent) size of one payload in bytes (default 65536); more -> ValidationError
	MaxDepth        int // maximum payload nesting depth; the payload object itself is level 1 (default 64); more -> ValidationError
	// Payload numbers must print (as PostgreSQL prints them back) with at
	// most MaxNumberIntDigits digits before the decimal point (default 40,
	// at most 131072) and MaxNumberFracDigits after it (default 40, at most
	// 16383); see number.go. More -> ValidationError number_range.
	MaxNumberIntDigits  int
	MaxNumberFracDigits int
	// MaxErrorBytes bounds the listed errors of a ValidationError
	// (default MaxErrorBytes; see ErrorList).
	MaxErrorBytes int
}

// DefaultLimits returns the default limits.
func DefaultLimits() Limits {
	return Limits{MaxBatch: DefaultMaxBatch, MaxPayloadBytes: DefaultMaxPayloadBytes, MaxDepth: DefaultMaxDepth,
		MaxNumberIntDigits: DefaultMaxNumberIntDigits, MaxNumberFracDigits: DefaultMaxNumberFracDigits,
		MaxErrorBytes: MaxErrorBytes}
}

// numberMsg is the message of a number_range error.
func (l Limits) numberMsg() string {
	return "Number should print in at most " + strconv.Itoa(l.MaxNumberIntDigits) + " digits before and " +
		strconv.Itoa(l.MaxNumberFracDigits) + " after the decimal point (|x| < 1e" + strconv.Itoa(l.MaxNumberIntDigits) +
		", at most " + strconv.Itoa(l.MaxNumberFracDigits) + " decimals; send larger values as strings)"
}

func (l Limits) normalized() Limits {
	if l.MaxBatch <= 0 {
		l.MaxBatch = DefaultMaxBatch
	}
	if l.MaxPayloadBytes <= 0 {
		l.MaxPayloadBytes = DefaultMaxPayloadBytes
	}
	if l.MaxDepth <= 0 {
		l.MaxDepth = DefaultMaxDepth
	}
	if l.MaxNumberIntDigits <= 0 {
		l.MaxNumberIntDigits = DefaultMaxNumberIntDigits
	}
	l.MaxNumberIntDigits = min(l.MaxNumberIntDigits, pgMaxDWeight+1)
	if l.MaxNumberFracDigits <= 0 {
		l.MaxNumberFracDigits = DefaultMaxNumberFracDigits
	}
	l.MaxNumberFracDigits = min(l.MaxNumberFracDigits, pgMaxDScale)
	if l.MaxErrorBytes <= 0 {
		l.MaxErrorBytes = MaxErrorBytes
	}
	return l
}

// FieldError is one pydantic-style validation error entry.
type FieldError struct {
	Loc  []any  `json:"loc"` // strings and ints
	Msg  string `json:"msg"`
	Type string `json:"type"`
}

// ValidationError lists the problems of a request's events (the API
// answers 422 with body {"detail": Errors}): every one, or as many as fit
// MaxErrorBytes followed by one too_many_errors entry counting the rest.
type ValidationError struct{ Errors []FieldError }

// ErrorList accumulates FieldErrors within the MaxErrors and MaxBytes
// bounds. The zero value is ready to use (MaxBytes 0: MaxErrorBytes).
type ErrorList struct {
	MaxBytes int

	errs   []FieldError
	bytes  int  // encoded size of errs, about
	found  int  // problems found, listed or not
	capped bool // the byte budget is spent: later errors are only counted
}

// Add records one problem; it reports false once MaxErrors problems were
// found (the caller should stop looking). loc is built by the caller only
// when Listing says it will be kept.
func (l *ErrorList) Add(loc []any, msg, typ string) bool {
	l.found++
	if !l.capped {
		n := fieldErrorSize(loc, msg, typ)
		lim := l.MaxBytes
		if lim <= 0 {
			lim = MaxErrorBytes
		}
		if l.bytes+n <= lim {
			l.errs = append(l.errs, FieldError{Loc: loc, Msg: msg, Type: typ})
			l.bytes += n
		} else {
			l.capped = true
		}
	}
	return l.found < MaxErrors
}

// Listing reports whether the next Add keeps its entry (the byte budget is
// not yet spent); callers skip building locations when it is false.
func (l *ErrorList) Listing() bool { return !l.capped }

// Len is the number of problems found.
func (l *ErrorList) Len() int { return l.found }

// Errors returns the listed errors, plus the too_many_errors entry when
// some were left out; the list is owned by the caller afterwards.
func (l *ErrorList) Errors() []FieldError {
	errs := l.errs
	if hidden := l.found - len(l.errs); hidden > 0 {
		lim := l.MaxBytes
		if lim <= 0 {
			lim = MaxErrorBytes
		}
		msg := "...and " + strconv.Itoa(hidden) + " more errors, not listed (at most " +
			strconv.Itoa(lim) + " bytes of errors are listed"
		if l.found >= MaxErrors {
			msg += "; validation stops after " + strconv.Itoa(MaxErrors) + " errors, so there may be more"
		}
		errs = append(errs, FieldError{Loc: []any{"body", "events"}, Msg: msg + ")", Type: TypeTooManyErrors})
	}
	l.errs, l.bytes, l.found, l.capped = nil, 0, 0, false // MaxBytes stays
	return errs
}

// fieldErrorSize is the size of a FieldError encoded as JSON without HTML
// escaping, at most a few bytes off.
func fieldErrorSize(loc []any, msg, typ string) int {
	n := len(`{"loc":[],"msg":,"type":},`) + jsonStringSize(msg) + jsonStringSize(typ)
	for _, e := range loc {
		switch v := e.(type) {
		case string:
			n += jsonStringSize(v) + 1
		case int:
			n += len(strconv.Itoa(v)) + 1
		default:
			n += 21
		}
	}
	return n
}

// jsonStringSize is the length of s encoded by encoding/json without HTML
// escaping, quotes excluded, counting 6 bytes for any escaped byte.
func jsonStringSize(s string) int {
	n := len(s)
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' {
			n += 5
		} else if c == 0xE2 && i+2 < len(s) && s[i+1] == 0x80 && (s[i+2] == 0xA8 || s[i+2] == 0xA9) {
			n += 3 // U+2028 and U+2029 are escaped as \u2028, \u2029
		}
	}
	return n + 2
}

func (e *ValidationError) Error() string {
	if len(e.Errors) == 0 {
		return "event: validation failed"
	}
	var b strings.Builder
	b.WriteString("event: validation failed: ")
	writeFieldError(&b, &e.Errors[0])
	if n := len(e.Errors) - 1; n > 0 {
		b.WriteString(" (and ")
		b.WriteString(strconv.Itoa(n))
		b.WriteString(" more)")
	}
	return b.String()
}

func writeFieldError(b *strings.Builder, f *FieldError) {
	for i, l := range f.Loc {
		if i > 0 {
			b.WriteByte('.')
		}
		switch v := l.(type) {
		case string:
			b.WriteString(strconv.Quote(v))
		case int:
			b.WriteString(strconv.Itoa(v))
		default:
			b.WriteString("?")
		}
	}
	b.WriteString(": ")
	b.WriteString(f.Msg)
	b.WriteString(" [")
	b.WriteString(f.Type)
	b.WriteString("]")
}

// RequestKind says what is wrong with a request as a whole.
type RequestKind int

// The kinds of RequestError.
const (
	// Malformed: the body is not valid JSON or not {"events": [...]}.
	Malformed RequestKind = iota + 1
	// TooLarge: more than Limits.MaxBatch events (or a body over its limit).
	TooLarge
)

func (k RequestKind) String() string {
	switch k {
	case Malformed:
		return "malformed"
	case TooLarge:
		return "too large"
	}
	return "RequestKind(" + strconv.Itoa(int(k)) + ")"
}

// RequestError is a request refused as a whole, before any event is looked
// at; Msg is a clear one-line reason.
type RequestError struct {
	Kind RequestKind
	Msg  string
}

func (e *RequestError) Error() string { return e.Msg }

// Pydantic-style error types.
const (
	TypeMissing         = "missing"
	TypeStringType      = "string_type"
	TypeStringTooShort  = "string_too_short"
	TypeStringTooLong   = "string_too_long"
	TypeStringUnicode   = "string_unicode"
	TypeDatetimeType    = "datetime_type"
	TypeDatetimeParsing = "datetime_parsing"
	TypeDictType        = "dict_type"
	TypeListType        = "list_type"
	TypePayloadTooLarge = "payload_too_large"
	TypeJSONDepth       = "json_depth"
	TypeNumberRange     = "number_range"
	// TypeTooManyErrors is the last entry of a list cut by MaxErrorBytes or
	// MaxErrors; its msg says how many errors are not listed.
	TypeTooManyErrors = "too_many_errors"
)

// Messages for the fixed-text error types.
const (
	msgMissing      = "Field required"
	msgStringType   = "Input should be a valid string"
	msgDatetimeType = "Input should be a valid datetime"
	msgDictType     = "Input should be a valid dictionary or object"
	msgListType     = "Input should be a valid list"
	msgBadUTF8      = "String should be valid UTF-8 (invalid byte sequence)"
	msgNUL          = "String should not contain the NUL character (\\u0000)"
	msgSurrogate    = "String should not contain a lone UTF-16 surrogate escape"
)
