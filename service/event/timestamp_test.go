package event

import (
	"errors"
	"testing"
	"time"
)

func TestParseTimestampAccepted(t *testing.T) {
	utc := func(y, mo, d, h, mi, s, ns int) time.Time {
		return time.Date(y, time.Month(mo), d, h, mi, s, ns, time.UTC)
	}
	cases := []struct {
		in   string
		want time.Time
	}{
		{"2024-01-02T03:04:05Z", utc(2024, 1, 2, 3, 4, 5, 0)},
		{"2024-01-02T03:04:05z", utc(2024, 1, 2, 3, 4, 5, 0)},
		{"2024-01-02t03:04:05Z", utc(2024, 1, 2, 3, 4, 5, 0)},
		{"2024-01-02 03:04:05Z", utc(2024, 1, 2, 3, 4, 5, 0)},
		{"2024-01-02T03:04:05", utc(2024, 1, 2, 3, 4, 5, 0)},    // no offset -> UTC
		{"2024-01-02 03:04:05", utc(2024, 1, 2, 3, 4, 5, 0)},    // no offset -> UTC
		{"2024-01-02T03:04", utc(2024, 1, 2, 3, 4, 0, 0)},       // seconds optional
		{"2024-01-02T03:04Z", utc(2024, 1, 2, 3, 4, 0, 0)},      // seconds optional
		{"2024-01-02T03:04+01:00", utc(2024, 1, 2, 2, 4, 0, 0)}, // seconds optional
		{"2024-01-02T03:04:05.1Z", utc(2024, 1, 2, 3, 4, 5, 100000000)},
		{"2024-01-02T03:04:05.123Z", utc(2024, 1, 2, 3, 4, 5, 123000000)},
		{"2024-01-02T03:04:05.123456Z", utc(2024, 1, 2, 3, 4, 5, 123456000)},
		{"2024-01-02T03:04:05.123456789Z", utc(2024, 1, 2, 3, 4, 5, 123456789)},
		{"2024-01-02T03:04:05.000000001", utc(2024, 1, 2, 3, 4, 5, 1)},
		{"2024-01-02T03:04:05+00:00", utc(2024, 1, 2, 3, 4, 5, 0)},
		{"2024-01-02T03:04:05-00:00", utc(2024, 1, 2, 3, 4, 5, 0)},
		{"2024-01-02T03:04:05+02:30", utc(2024, 1, 2, 0, 34, 5, 0)},
		{"2024-01-02T03:04:05-0530", utc(2024, 1, 2, 8, 34, 5, 0)},
		{"2024-01-02T03:04:05.5+0100", utc(2024, 1, 2, 2, 4, 5, 500000000)},
		{"2024-01-02T03:04:05+23:59", utc(2024, 1, 1, 3, 5, 5, 0)},
		{"2024-01-02T03:04:05-23:59", utc(2024, 1, 3, 3, 3, 5, 0)},
		{"2024-02-29T00:00:00Z", utc(2024, 2, 29, 0, 0, 0, 0)},
		{"2000-02-29T00:00:00Z", utc(2000, 2, 29, 0, 0, 0, 0)},
		{"2023-12-31T23:59:59.999999999Z", utc(2023, 12, 31, 23, 59, 59, 999999999)},
		{"0001-01-01T00:00:00Z", utc(1, 1, 1, 0, 0, 0, 0)},
		{"0001-01-01T00:00:00-01:00", utc(1, 1, 1, 1, 0, 0, 0)},
		{"9999-12-31T23:59:59.999999999Z", utc(9999, 12, 31, 23, 59, 59, 999999999)},
		{"9999-12-31T23:59:59+01:00", utc(9999, 12, 31, 22, 59, 59, 0)},
		{"1969-07-20T20:17:40Z", utc(1969, 7, 20, 20, 17, 40, 0)},
	}
	for _, tc := range cases {
		got, err := ParseTimestamp(tc.in)
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		if !got.Equal(tc.want) || got.Location() != time.UTC || got != tc.want {
			t.Errorf("%q: got %v, want %v", tc.in, got, tc.want)
		}
		// The []byte instantiation agrees.
		if got2, err := parseTS([]byte(tc.in)); err != nil || got2 != got {
			t.Errorf("%q: []byte parse differs: %v %v", tc.in, got2, err)
		}
	}
}

func TestParseTimestampRejected(t *testing.T) {
	cases := []struct{ in, reason string }{
		{"", "input is too short"},
		{"202", "input is too short"},
		{"2024", "input is too short"},
		{"2024-01", "input is too short"},
		{"2024-01-02", "a time of day is required (date-only input)"},
		{"2024-01-02T", "input is too short"},
		{"2024-01-02T03", "input is too short"},
		{"2024-01-02T03:", "input is too short"},
		{"2024-01-02T03:0", "input is too short"},
		{"2024-01-02T03:04:", "input is too short"},
		{"2024-01-02T03:04:5", "input is too short"},
		{"20240102T030405Z", "invalid date separator, expected `-`"},
		{"2024/01/02T03:04:05Z", "invalid date separator, expected `-`"},
		{"2024-1-02T03:04:05Z", "invalid character in month"},
		{"2024-01-2T03:04:05Z", "invalid character in day"},
		{"24-01-02T03:04:05Z", "invalid character in year"},
		{"+2024-01-02T03:04:05Z", "invalid character in year"},
		{" 2024-01-02T03:04:05Z", "invalid character in year"},
		{"2024-01-02T03:04:05Z ", "unexpected extra characters at the end of the input"},
		{"2024-01-02_03:04:05Z", "invalid datetime separator, expected `T`, `t` or space"},
		{"2024-01-02X03:04:05Z", "invalid datetime separator, expected `T`, `t` or space"},
		{"2024-01-02T3:04:05Z", "invalid character in hour"},
		{"2024-01-02T03.04.05Z", "invalid time separator, expected `:`"},
		{"2024-01-02T03:4:05Z", "invalid character in minute"},
		{"2024-01-02T03:04:5Z", "invalid character in second"},
		{"0000-01-01T00:00:00Z", "year value is outside expected range of 0001-9999"},
		{"2024-00-01T00:00:00Z", "month value is outside expected range of 1-12"},
		{"2024-13-01T00:00:00Z", "month value is outside expected range of 1-12"},
		{"2024-01-00T00:00:00Z", "day value is outside expected range"},
		{"2024-01-32T00:00:00Z", "day value is outside expected range"},
		{"2023-02-29T00:00:00Z", "day value is outside expected range"},
		{"1900-02-29T00:00:00Z", "day value is outside expected range"},
		{"2024-04-31T00:00:00Z", "day value is outside expected range"},
		{"2024-01-02T24:00:00Z", "hour value is outside expected range of 0-23"},
		{"2024-01-02T23:60:00Z", "minute value is outside expected range of 0-59"},
		{"2024-01-02T23:59:60Z", "second value is outside expected range of 0-59"},
		{"2024-01-02T03:04:05.Z", "second fraction must have 1 to 9 digits"},
		{"2024-01-02T03:04:05.", "second fraction must have 1 to 9 digits"},
		{"2024-01-02T03:04:05.1234567890Z", "second fraction must have 1 to 9 digits"},
		{"2024-01-02T03:04.5Z", "invalid timezone, expected `Z`, `+hh:mm`, `-hh:mm`, `+hhmm` or `-hhmm`"},
		{"2024-01-02T03:04:05,5Z", "invalid timezone, expected `Z`, `+hh:mm`, `-hh:mm`, `+hhmm` or `-hhmm`"},
		{"2024-01-02T03:04:05+01", "invalid timezone, expected `Z`, `+hh:mm`, `-hh:mm`, `+hhmm` or `-hhmm`"},
		{"2024-01-02T03:04:05+1:00", "invalid timezone, expected `Z`, `+hh:mm`, `-hh:mm`, `+hhmm` or `-hhmm`"},
		{"2024-01-02T03:04:05+01:0", "invalid timezone, expected `Z`, `+hh:mm`, `-hh:mm`, `+hhmm` or `-hhmm`"},
		{"2024-01-02T03:04:05+01:000", "unexpected extra characters at the end of the input"},
		{"2024-01-02T03:04:05UTC", "invalid timezone, expected `Z`, `+hh:mm`, `-hh:mm`, `+hhmm` or `-hhmm`"},
		{"2024-01-02T03:04:05 +01:00", "invalid timezone, expected `Z`, `+hh:mm`, `-hh:mm`, `+hhmm` or `-hhmm`"},
		{"2024-01-02T03:04:05+24:00", "timezone offset is outside expected range (hours 0-23, minutes 0-59)"},
		{"2024-01-02T03:04:05+01:60", "timezone offset is outside expected range (hours 0-23, minutes 0-59)"},
		{"2024-01-02T03:04:05ZZ", "unexpected extra characters at the end of the input"},
		{"2024-01-02T03:04:051", "unexpected extra characters at the end of the input"},
		{"2024-01-02T03:04:05Z\x00", "unexpected extra characters at the end of the input"},
		{"0001-01-01T00:00:00+00:01", "timestamp is outside the range 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999999Z once converted to UTC"},
		{"9999-12-31T23:59:59-00:01", "timestamp is outside the range 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999999Z once converted to UTC"},
		{"2024-01-02T03:04:05.123456789+01:00xxxxx", "input is too long"},
		{"１２３４-01-02T03:04:05Z", "invalid character in year"},
		{"2024-01-02T03:04:05\xff", "invalid timezone, expected `Z`, `+hh:mm`, `-hh:mm`, `+hhmm` or `-hhmm`"},
		{"yesterday", "invalid character in year"},
		{"1700000000", "invalid date separator, expected `-`"},
	}
	for _, tc := range cases {
		got, err := ParseTimestamp(tc.in)
		if err == nil {
			t.Errorf("%q: accepted as %v", tc.in, got)
			continue
		}
		var te *TimestampError
		if !errors.As(err, &te) {
			t.Errorf("%q: error type %T", tc.in, err)
			continue
		}
		if te.Reason != tc.reason {
			t.Errorf("%q: reason %q, want %q", tc.in, te.Reason, tc.reason)
		}
		if _, err2 := parseTS([]byte(tc.in)); err2 != err {
			t.Errorf("%q: []byte parse differs: %v", tc.in, err2)
		}
	}
}

// TestParseTimestampAgreesWithTime cross-checks RFC 3339 inputs with the
// standard library.
func TestParseTimestampAgreesWithTime(t *testing.T) {
	base := time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)
	step := time.Duration(9999*365*24/997) * time.Hour
	for i := 0; i < 997*3; i++ {
		tt := base.Add(time.Duration(i) * step / 3).Add(time.Duration(i*7919) * time.Nanosecond)
		if tt.Year() > 9999 {
			break
		}
		for _, loc := range []*time.Location{time.UTC, time.FixedZone("x", -5*3600-30*60), time.FixedZone("y", 13*3600)} {
			s := tt.In(loc).Format(time.RFC3339Nano)
			want, err := time.Parse(time.RFC3339Nano, s)
			if err != nil {
				continue
			}
			got, err := ParseTimestamp(s)
			if err != nil {
				if want.UTC().Year() < 1 || want.UTC().Year() > 9999 || want.Year() < 1 {
					continue
				}
				t.Fatalf("%q: %v", s, err)
			}
			if !got.Equal(want) {
				t.Fatalf("%q: got %v want %v", s, got, want)
			}
		}
	}
}

func TestParseTimestampNoAlloc(t *testing.T) {
	b := []byte("2024-01-02T03:04:05.123456+02:00")
	if n := testing.AllocsPerRun(100, func() { _, _ = parseTS(b) }); n != 0 {
		t.Fatalf("%v allocs", n)
	}
	if n := testing.AllocsPerRun(100, func() { _, _ = parseTS(b[:10]) }); n != 0 {
		t.Fatalf("%v allocs on error path", n)
	}
}
