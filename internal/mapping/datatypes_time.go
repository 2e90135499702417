package mapping

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nhp/interop/internal/hl7v2"
)

// Time conversions (DTM, TS, DT → FHIR date, dateTime, instant).
//
// FHIR requires a UTC offset on any dateTime that has a time, and v2 senders often omit it
// (the IG leaves the offset of MSH-7 and its kin to "local context"). We never invent one: a
// DTM with an offset keeps it as written (no conversion to UTC, so the calendar date stays the
// sender's); a DTM without one is read in the sender's zone when Options.Location configures
// it (the connector's settings.timeZone, else the tenant's timeZone), and otherwise is cut
// back to its date — the only part that is true without a zone — with one note per message
// naming the fields that lost their time of day. Reading it as UTC, or as the server's zone,
// would shift results by hours without saying so. Precision is kept, never padded, except
// that FHIR has no hour-only or minute-less dateTime: hours become hh:00:00 and minutes
// hh:mm:00, which state no more than the sender did.

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

// DateTime converts s, a DTM read from field n of seg, to a FHIR dateTime in the sender's zone
// (Opts.Location). A value that is not a date/time is noted and gives ""; a time of day dropped
// for want of an offset or a zone is noted once per message (noteZoneless).
func (b *Builder) DateTime(seg *hl7v2.Segment, n int, s string) string {
	t, p, ok := b.parseDTM(seg, n, s)
	if !ok {
		return ""
	}
	return formatDateTime(t, p)
}

// Instant is DateTime for a FHIR instant (seconds and an offset required): ok is false when s
// is empty, invalid (noted) or has no offset and no zone is configured (noted as DateTime).
func (b *Builder) Instant(seg *hl7v2.Segment, n int, s string) (string, bool) {
	t, p, ok := b.parseDTM(seg, n, s)
	if !ok || p < hl7v2.PrecisionMinute {
		return "", false
	}
	return formatDateTime(t, max(p, hl7v2.PrecisionSecond)), true
}

// parseDTM is the package's parseDTM with notes: an invalid value names its field, and a time
// of day cut for want of a zone records the field for noteZoneless.
func (b *Builder) parseDTM(seg *hl7v2.Segment, n int, s string) (time.Time, hl7v2.Precision, bool) {
	if s == "" || s == hl7v2.Null {
		return time.Time{}, 0, false
	}
	loc := b.Opts.Location
	if loc == nil {
		loc = noZone
	}
	t, p, err := hl7v2.ParseTimeIn(s, loc)
	if err != nil {
		b.noteBadTime(seg, n, s, err)
		return time.Time{}, 0, false
	}
	if t.Location() == noZone && p > hl7v2.PrecisionDay {
		b.zonelessField(seg.Name(), n)
		p = hl7v2.PrecisionDay
	}
	return t, p, true
}

// noteBadTime notes that s, read from field n of seg, is not a date/time; once per field and
// value, since OBR-7, OBR-22 and MSH-7 are read for several resources.
func (b *Builder) noteBadTime(seg *hl7v2.Segment, n int, s string, err error) {
	note := Note{Location: segLocation(seg, n), Text: fmt.Sprintf("%q is not a valid date/time (%s); not mapped", s, badTimeReason(s, err))}.String()
	if !slices.Contains(b.notes, note) {
		b.notes = append(b.notes, note)
	}
}

// badTimeReason is the reason hl7v2.ParseTime gave for s, without the value and the sentinel
// its error repeats.
func badTimeReason(s string, err error) string {
	why := strings.TrimPrefix(err.Error(), fmt.Sprintf("time %q: ", s))
	return strings.TrimSuffix(why, ": "+hl7v2.ErrBadTime.Error())
}

// fieldRef names a field by segment ID and number, without its occurrence: the zone note
// lists fields, not every OBX that has one.
type fieldRef struct {
	seg string
	n   int
}

// zonelessField records that field n of segments seg had a time of day cut to its date.
func (b *Builder) zonelessField(seg string, n int) {
	f := fieldRef{seg, n}
	for _, g := range b.zoneless {
		if g == f {
			return
		}
	}
	b.zoneless = append(b.zoneless, f)
}

// noteZoneless writes the one note that says which fields lost their time of day, and how to
// keep it.
func (b *Builder) noteZoneless() {
	if len(b.zoneless) == 0 {
		return
	}
	locs := make([]string, len(b.zoneless))
	for i, f := range b.zoneless {
		locs[i] = hl7v2.Location{Segment: f.seg, Field: f.n}.String()
	}
	b.NoteAt(strings.Join(locs, ", "), "time of day dropped (a dateTime keeps its date, an instant is not mapped): "+
		"the values have no UTC offset and no time zone is configured for the sender "+
		"(connector settings.timeZone or the tenant's timeZone)")
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
