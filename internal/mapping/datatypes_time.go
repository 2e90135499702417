package mapping

import (
	"time"

	"github.com/nhp/interop/internal/hl7v2"
)

// Time conversions (DTM, TS, DT → FHIR date, dateTime, instant).
//
// FHIR requires a UTC offset on any dateTime that has a time, and v2 senders often omit it.
// We never invent one: a DTM with an offset keeps it as written (no conversion to UTC, so the
// calendar date stays the sender's); a DTM without one is read in the tenant's zone when
// Options.Location configures it, and otherwise is cut back to its date — the only part
// that is true without a zone. Precision is kept, never padded, except that FHIR has no
// hour-only or minute-less dateTime: hours become hh:00:00 and minutes hh:mm:00, which
// state no more than the sender did.

// DateTime converts a DTM (or TS-1) to a FHIR dateTime; "" when s is empty or not a valid
// time. loc is the zone of values without an offset (nil: none known).
func DateTime(s string, loc *time.Location) string {
	t, p, ok := parseDTM(s, loc)
	if !ok {
		return ""
	}
	return formatDateTime(t, p)
}

// Date converts a DTM/DT to a FHIR date (the date as written, in the sender's zone).
func Date(s string) string {
	t, p, ok := parseDTM(s, time.UTC)
	if !ok {
		return ""
	}
	return fhirDate(t, p)
}

// Instant converts a DTM to a FHIR instant, which needs seconds and an offset; ok is false
// when the value has no offset and loc is nil, or is coarser than a minute.
func Instant(s string, loc *time.Location) (string, bool) {
	t, p, ok := parseDTM(s, loc)
	if !ok || p < hl7v2.PrecisionMinute {
		return "", false
	}
	if p < hl7v2.PrecisionSecond {
		p = hl7v2.PrecisionSecond
	}
	return formatDateTime(t, p), true
}

// parseDTM parses s; a time-of-day without an offset and without loc is reduced to its date.
func parseDTM(s string, loc *time.Location) (time.Time, hl7v2.Precision, bool) {
	if s == "" || s == hl7v2.Null {
		return time.Time{}, 0, false
	}
	if loc == nil {
		t, p, err := hl7v2.ParseTimeIn(s, noZone)
		if err != nil {
			return time.Time{}, 0, false
		}
		if t.Location() == noZone && p > hl7v2.PrecisionDay {
			p = hl7v2.PrecisionDay
		}
		return t, p, true
	}
	t, p, err := hl7v2.ParseTimeIn(s, loc)
	return t, p, err == nil
}

// noZone marks "no offset written": ParseTimeIn returns it only when s had none.
var noZone = time.FixedZone("v2-no-offset", 0)

func formatDateTime(t time.Time, p hl7v2.Precision) string {
	switch {
	case p <= hl7v2.PrecisionDay:
		return fhirDate(t, p)
	case p <= hl7v2.PrecisionSecond:
		return t.Format("2006-01-02T15:04:05-07:00")
	case p == hl7v2.PrecisionDecisecond:
		return t.Format("2006-01-02T15:04:05.0-07:00")
	case p == hl7v2.PrecisionCentisecond:
		return t.Format("2006-01-02T15:04:05.00-07:00")
	case p == hl7v2.PrecisionMillisecond:
		return t.Format("2006-01-02T15:04:05.000-07:00")
	}
	return t.Format("2006-01-02T15:04:05.0000-07:00")
}

func fhirDate(t time.Time, p hl7v2.Precision) string {
	switch {
	case p <= hl7v2.PrecisionYear:
		return t.Format("2006")
	case p == hl7v2.PrecisionMonth:
		return t.Format("2006-01")
	default:
		return t.Format("2006-01-02")
	}
}

// period returns a Period, or nil when both ends are empty.
func period(start, end string) *Period {
	if start == "" && end == "" {
		return nil
	}
	return &Period{Start: start, End: end}
}
