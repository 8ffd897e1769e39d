package event

import "time"

// TimestampError is returned by ParseTimestamp; Reason is a short
// pydantic-like explanation ("invalid character in year", ...).
type TimestampError struct{ Reason string }

func (e *TimestampError) Error() string { return "invalid timestamp: " + e.Reason }

// Sentinel errors (no allocation on the error path).
var (
	errTSTooShort   = &TimestampError{"input is too short"}
	errTSTooLong    = &TimestampError{"input is too long"}
	errTSDateOnly   = &TimestampError{"a time of day is required (date-only input)"}
	errTSYearChar   = &TimestampError{"invalid character in year"}
	errTSMonthChar  = &TimestampError{"invalid character in month"}
	errTSDayChar    = &TimestampError{"invalid character in day"}
	errTSHourChar   = &TimestampError{"invalid character in hour"}
	errTSMinuteChar = &TimestampError{"invalid character in minute"}
	errTSSecondChar = &TimestampError{"invalid character in second"}
	errTSDateSep    = &TimestampError{"invalid date separator, expected `-`"}
	errTSDTSep      = &TimestampError{"invalid datetime separator, expected `T`, `t` or space"}
	errTSTimeSep    = &TimestampError{"invalid time separator, expected `:`"}
	errTSFraction   = &TimestampError{"second fraction must have 1 to 9 digits"}
	errTSYear       = &TimestampError{"year value is outside expected range of 0001-9999"}
	errTSMonth      = &TimestampError{"month value is outside expected range of 1-12"}
	errTSDay        = &TimestampError{"day value is outside expected range"}
	errTSHour       = &TimestampError{"hour value is outside expected range of 0-23"}
	errTSMinute     = &TimestampError{"minute value is outside expected range of 0-59"}
	errTSSecond     = &TimestampError{"second value is outside expected range of 0-59"}
	errTSTZ         = &TimestampError{"invalid timezone, expected `Z`, `+hh:mm`, `-hh:mm`, `+hhmm` or `-hhmm`"}
	errTSTZRange    = &TimestampError{"timezone offset is outside expected range (hours 0-23, minutes 0-59)"}
	errTSExtra      = &TimestampError{"unexpected extra characters at the end of the input"}
	errTSUTCRange   = &TimestampError{"timestamp is outside the range 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999999Z once converted to UTC"}
)

// maxTimestampLen bounds the accepted timestamp string length
// ("2006-01-02T15:04:05.123456789+07:00" is 35 bytes).
const maxTimestampLen = 35

var (
	minTime = time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)
	maxTime = time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC)
)

// ParseTimestamp applies the timestamp rule and returns the instant in UTC.
//
// Accepted form (ISO 8601 extended format, RFC 3339 profile):
//
//	YYYY-MM-DD SEP hh:mm[:ss[.fraction]][offset]
//	SEP      = "T" | "t" | " "
//	fraction = 1 to 9 digits (requires seconds)
//	offset   = "Z" | "z" | ("+" | "-") hh ":" mm | ("+" | "-") hhmm
//
// Rules:
//   - the year is 0001..9999, month 1..12, day valid for the month (leap
//     years per the Gregorian calendar), hour 0..23, minute 0..59, second
//     0..59 (no leap second 60, no 24:00);
//   - seconds are optional (as in pydantic);
//   - no offset means UTC; offsets are 00..23 hours and 00..59 minutes
//     ("-00:00" is UTC);
//   - the instant, converted to UTC, must also lie in years 0001..9999;
//   - date-only input, week/ordinal dates, basic format (no separators),
//     "," as decimal mark, "+hh" offsets, whitespace around the value and
//     anything longer than 35 bytes are rejected.
//
// The returned error is a *TimestampError.
func ParseTimestamp(s string) (time.Time, error) {
	return parseTS(s)
}

func digits2[S ~string | ~[]byte](s S, i int) (int, bool) {
	a, b := s[i]-'0', s[i+1]-'0'
	if a > 9 || b > 9 {
		return 0, false
	}
	return int(a)*10 + int(b), true
}

// parseTS is ParseTimestamp for strings and byte slices: the date, the
// separator, the time of day, the offset, then the instant in UTC. Each
// part reports the first problem it meets, in reading order.
func parseTS[S ~string | ~[]byte](s S) (time.Time, error) {
	n := len(s)
	if n > maxTimestampLen {
		return time.Time{}, errTSTooLong
	}
	y, mo, day, err := parseDate(s)
	if err != nil {
		return time.Time{}, err
	}
	if n == 10 {
		return time.Time{}, errTSDateOnly
	}
	if c := s[10]; c != 'T' && c != 't' && c != ' ' {
		return time.Time{}, errTSDTSep
	}
	hh, mi, ss, ns, i, err := parseClock(s)
	if err != nil {
		return time.Time{}, err
	}
	off, i, err := parseOffset(s, i)
	if err != nil {
		return time.Time{}, err
	}
	if i != n {
		return time.Time{}, errTSExtra
	}
	t := time.Date(y, time.Month(mo), day, hh, mi, ss, ns, time.UTC)
	if off != 0 {
		t = t.Add(-time.Duration(off) * time.Second)
		if t.Before(minTime) || t.After(maxTime) {
			return time.Time{}, errTSUTCRange
		}
	}
	return t, nil
}

// parseDate reads "YYYY-MM-DD" at the start of s and checks that it is a
// day of the calendar.
func parseDate[S ~string | ~[]byte](s S) (y, mo, day int, err error) {
	n := len(s)
	if n < 4 {
		return 0, 0, 0, errTSTooShort
	}
	for k := 0; k < 4; k++ {
		c := s[k] - '0'
		if c > 9 {
			return 0, 0, 0, errTSYearChar
		}
		y = y*10 + int(c)
	}
	if n < 5 {
		return 0, 0, 0, errTSTooShort
	}
	if s[4] != '-' {
		return 0, 0, 0, errTSDateSep
	}
	if n < 7 {
		return 0, 0, 0, errTSTooShort
	}
	mo, ok := digits2(s, 5)
	if !ok {
		return 0, 0, 0, errTSMonthChar
	}
	if n < 8 {
		return 0, 0, 0, errTSTooShort
	}
	if s[7] != '-' {
		return 0, 0, 0, errTSDateSep
	}
	if n < 10 {
		return 0, 0, 0, errTSTooShort
	}
	day, ok = digits2(s, 8)
	if !ok {
		return 0, 0, 0, errTSDayChar
	}
	switch {
	case y < 1:
		return 0, 0, 0, errTSYear
	case mo < 1 || mo > 12:
		return 0, 0, 0, errTSMonth
	case day < 1 || day > daysIn(mo, y):
		return 0, 0, 0, errTSDay
	}
	return y, mo, day, nil
}

// parseClock reads "hh:mm[:ss[.fraction]]" from s[11:] and returns it
// with the index just after it.
func parseClock[S ~string | ~[]byte](s S) (hh, mi, ss, ns, i int, err error) {
	n := len(s)
	if n < 13 {
		return 0, 0, 0, 0, 0, errTSTooShort
	}
	hh, ok := digits2(s, 11)
	if !ok {
		return 0, 0, 0, 0, 0, errTSHourChar
	}
	if hh > 23 {
		return 0, 0, 0, 0, 0, errTSHour
	}
	if n < 14 {
		return 0, 0, 0, 0, 0, errTSTooShort
	}
	if s[13] != ':' {
		return 0, 0, 0, 0, 0, errTSTimeSep
	}
	if n < 16 {
		return 0, 0, 0, 0, 0, errTSTooShort
	}
	mi, ok = digits2(s, 14)
	if !ok {
		return 0, 0, 0, 0, 0, errTSMinuteChar
	}
	if mi > 59 {
		return 0, 0, 0, 0, 0, errTSMinute
	}
	i = 16
	if i < n && s[i] == ':' {
		if n < i+3 {
			return 0, 0, 0, 0, 0, errTSTooShort
		}
		ss, ok = digits2(s, i+1)
		if !ok {
			return 0, 0, 0, 0, 0, errTSSecondChar
		}
		if ss > 59 {
			return 0, 0, 0, 0, 0, errTSSecond
		}
		i += 3
		if i < n && s[i] == '.' {
			if ns, i, err = parseFraction(s, i+1); err != nil {
				return 0, 0, 0, 0, 0, err
			}
		}
	}
	return hh, mi, ss, ns, i, nil
}

// parseFraction reads the 1 to 9 digits of a second fraction at s[i:] and
// returns them as nanoseconds, with the index just after them.
func parseFraction[S ~string | ~[]byte](s S, i int) (ns, next int, err error) {
	n, k := len(s), 0
	for i < n && s[i]-'0' <= 9 {
		if k == 9 {
			return 0, 0, errTSFraction
		}
		ns = ns*10 + int(s[i]-'0')
		i++
		k++
	}
	if k == 0 {
		return 0, 0, errTSFraction
	}
	for ; k < 9; k++ {
		ns *= 10
	}
	return ns, i, nil
}

// parseOffset reads an optional "Z", "+hh:mm" or "+hhmm" (or "-") at s[i:]
// and returns it in seconds east of UTC, with the index just after it.
func parseOffset[S ~string | ~[]byte](s S, i int) (off, next int, err error) {
	n := len(s)
	if i == n {
		return 0, i, nil
	}
	switch s[i] {
	case 'Z', 'z':
		return 0, i + 1, nil
	case '+', '-':
	default:
		if s[i]-'0' <= 9 {
			return 0, 0, errTSExtra
		}
		return 0, 0, errTSTZ
	}
	sign := 1
	if s[i] == '-' {
		sign = -1
	}
	i++
	if n < i+2 {
		return 0, 0, errTSTZ
	}
	oh, ok := digits2(s, i)
	if !ok {
		return 0, 0, errTSTZ
	}
	i += 2
	if i < n && s[i] == ':' {
		i++
	}
	if n < i+2 {
		return 0, 0, errTSTZ
	}
	om, ok := digits2(s, i)
	if !ok {
		return 0, 0, errTSTZ
	}
	i += 2
	if oh > 23 || om > 59 {
		return 0, 0, errTSTZRange
	}
	return sign * (oh*3600 + om*60), i, nil
}

func daysIn(m, y int) int {
	switch m {
	case 2:
		if y%4 == 0 && (y%100 != 0 || y%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}
