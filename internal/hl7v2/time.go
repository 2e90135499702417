package hl7v2

import (
	"fmt"
	"strings"
	"sync/atomic"
	"time"
)

// Precision records how much of a DTM/TS value was present. HL7 times are
// often partial (a birth date, an hour) and a FHIR mapper must not invent
// digits, so ParseTime returns it alongside the time.
type Precision uint8

// Precision values, from coarsest to finest.
const (
	PrecisionYear Precision = iota + 1
	PrecisionMonth
	PrecisionDay
	PrecisionHour
	PrecisionMinute
	PrecisionSecond
	PrecisionDecisecond       // one fractional digit
	PrecisionCentisecond      // two
	PrecisionMillisecond      // three
	PrecisionTenthMillisecond // four, the most HL7 allows
)

// String returns the precision's name, e.g. "minute".
func (p Precision) String() string {
	names := [...]string{"unknown", "year", "month", "day", "hour", "minute", "second",
		"decisecond", "centisecond", "millisecond", "tenth-millisecond"}
	if int(p) < len(names) {
		return names[p]
	}
	return "unknown"
}

// ParseTime parses an HL7 DTM (or the first component of a TS):
//
//	YYYY[MM[DD[HH[MM[SS[.S[S[S[S]]]]]]]]][+/-ZZZZ]
//
// Without an offset the value is taken as UTC; use ParseTimeIn when the
// sender's zone is known. An offset gives a time.FixedZone location, shared
// between calls with the same offset. Errors wrap ErrBadTime.
func ParseTime(s string) (time.Time, Precision, error) {
	return ParseTimeIn(s, time.UTC)
}

// ParseTimeIn is ParseTime with the zone to assume when s has no offset.
func ParseTimeIn(s string, loc *time.Location) (time.Time, Precision, error) {
	bad := func(why string) (time.Time, Precision, error) {
		return time.Time{}, 0, fmt.Errorf("time %q: %s: %w", s, why, ErrBadTime)
	}
	body := s
	zone := loc
	// The sign cannot be part of the digits, so the first '+'/'-' starts the offset.
	for i := 0; i < len(s); i++ {
		if s[i] == '+' || s[i] == '-' {
			off := s[i+1:]
			if len(off) != 4 || !allDigits(off) {
				return bad("offset must be +/-HHMM")
			}
			h, m := atoi2(off[:2]), atoi2(off[2:])
			if h > 14 || m > 59 {
				return bad("offset out of range")
			}
			secs := (h*60 + m) * 60
			if s[i] == '-' {
				secs = -secs
			}
			zone = fixedZone(secs)
			body = s[:i]
			break
		}
	}
	frac, fracDigits := 0, 0
	if dot := strings.IndexByte(body, '.'); dot >= 0 {
		f := body[dot+1:]
		body = body[:dot]
		if len(body) != 14 {
			return bad("fractional seconds need YYYYMMDDHHMMSS")
		}
		if len(f) == 0 || len(f) > 4 || !allDigits(f) {
			return bad("fraction must be 1 to 4 digits")
		}
		fracDigits = len(f)
		for i := 0; i < 4; i++ {
			frac *= 10
			if i < len(f) {
				frac += int(f[i] - '0')
			}
		}
	}
	if !allDigits(body) {
		return bad("expected digits")
	}
	var p Precision
	switch len(body) {
	case 4:
		p = PrecisionYear
	case 6:
		p = PrecisionMonth
	case 8:
		p = PrecisionDay
	case 10:
		p = PrecisionHour
	case 12:
		p = PrecisionMinute
	case 14:
		p = PrecisionSecond + Precision(fracDigits)
	default:
		return bad("wrong number of digits")
	}
	year := atoi2(body[:2])*100 + atoi2(body[2:4])
	month, day, hour, minute, sec := 1, 1, 0, 0, 0
	if p >= PrecisionMonth {
		month = atoi2(body[4:6])
	}
	if p >= PrecisionDay {
		day = atoi2(body[6:8])
	}
	if p >= PrecisionHour {
		hour = atoi2(body[8:10])
	}
	if p >= PrecisionMinute {
		minute = atoi2(body[10:12])
	}
	if p >= PrecisionSecond {
		sec = atoi2(body[12:14])
	}
	if month < 1 || month > 12 || hour > 23 || minute > 59 || sec > 59 {
		return bad("field out of range")
	}
	t := time.Date(year, time.Month(month), day, hour, minute, sec, frac*100_000, zone)
	if t.Day() != day { // time.Date normalises 31 April to 1 May
		return bad("day out of range")
	}
	return t, p, nil
}

// FormatTime formats t as an HL7 DTM at precision p. The UTC offset is
// appended for hour precision and finer; dates alone never carry one.
func FormatTime(t time.Time, p Precision) string {
	layouts := [...]string{"", "2006", "200601", "20060102", "2006010215", "200601021504", "20060102150405",
		"20060102150405.0", "20060102150405.00", "20060102150405.000", "20060102150405.0000"}
	if p < PrecisionYear || int(p) >= len(layouts) {
		p = PrecisionSecond
	}
	layout := layouts[p]
	if p >= PrecisionHour {
		layout += "-0700"
	}
	return t.Format(layout)
}

// fixedZones caches the unnamed fixed zones of the offsets in use, by
// quarter hour from -14:45 to +14:45 (every zone in use today is a whole
// number of quarter hours; ParseTimeIn allows at most ±14:59). A
// time.Location is immutable, so sharing one is invisible to callers;
// time.FixedZone only caches whole hours and otherwise allocates three
// objects per call. The array is bounded, whatever offsets the input has.
var fixedZones [2*maxQuarters + 1]atomic.Pointer[time.Location]

const maxQuarters = 14*4 + 3

// fixedZone returns time.FixedZone("", secs), cached for quarter-hour
// offsets.
func fixedZone(secs int) *time.Location {
	const quarter = 15 * 60
	q := secs / quarter
	if q*quarter != secs || q < -maxQuarters || q > maxQuarters {
		return time.FixedZone("", secs)
	}
	slot := &fixedZones[q+maxQuarters]
	if z := slot.Load(); z != nil {
		return z
	}
	z := time.FixedZone("", secs)
	if !slot.CompareAndSwap(nil, z) {
		z = slot.Load() // another goroutine filled it first
	}
	return z
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// atoi2 converts exactly two ASCII digits.
func atoi2(s string) int { return int(s[0]-'0')*10 + int(s[1]-'0') }
