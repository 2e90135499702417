package mapping

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nhp/interop/internal/hl7v2"
)

func init() { RegisterMessage("SIU_S12", mapSIU) } // S12–S24, S26 (and S27) share SIU_S12; S23/S24 map to nothing

// mapSIU maps a schedule information unsolicited message (IG SIU_S12): the patient when the
// message has one, then the Appointment (SCH[Appointment], NTE[Appointment-Comment],
// AIS/AIG/AIL/AIP[Appointment]) keyed on the filler appointment id (SCH-2), else the placer's
// (SCH-1); then the segments other families map (DG1 → Condition, …).
//
// PV1 is not mapped to an Encounter: a scheduling message's visit is a planned one, and an
// Encounter is a conditional update that would replace the state the ADT feed owns (the
// same reason VXU leaves it).
func mapSIU(b *Builder) error {
	if t := strings.ToUpper(b.Msg.Type().Trigger); slotEvents[t] {
		return noMapping{fmt.Sprintf("MSH-9: %s is about schedule slots, not an appointment; nothing was written", b.Msg.Type())}
	}
	if b.Msg.Segment("PID", 1) != nil {
		if err := mapPatient(b); err != nil {
			return err
		}
	}
	for _, name := range []string{"PV1", "PV2"} {
		if seg := b.Msg.Segment(name, 1); seg != nil {
			b.MarkHandled(seg)
			b.Notef("%s: the planned visit of a scheduling message is not mapped to an Encounter", name)
		}
	}
	sch := b.Msg.Segment("SCH", 1)
	if sch == nil {
		return Unmappable("SCH", "%s has no SCH segment", b.Msg.Type())
	}
	if err := mapAppointment(b, sch); err != nil {
		return err
	}
	if err := b.MapSegments(); err != nil {
		return err
	}
	// The PATIENT group's OBX map only where a family registered an OBX segment handler.
	for _, seg := range b.Msg.Segments("OBX") {
		if !b.handled[seg] {
			b.Notef("OBX(%d): patient observation of a scheduling message not mapped", seg.Index())
		}
	}
	return nil
}

// slotEvents block (S23) and open (S24) schedule time: they change a schedule's slots (FHIR
// Slot), not an appointment, and an Appointment built from them would invent a booking.
var slotEvents = map[string]bool{"S23": true, "S24": true}

// Tables 0276 (appointment reason) and 0277 (appointment type): a code without a coding
// system is taken as the table's only when it is one of its values, else it stays local.
var (
	table0276 = map[string]bool{"CHECKUP": true, "EMERGENCY": true, "FOLLOWUP": true, "ROUTINE": true, "WALKIN": true}
	table0277 = map[string]bool{"COMPLETE": true, "NORMAL": true, "TENTATIVE": true}
)

// inTable gives the codings without a system that are values of table (by code, any case)
// that table's system.
func inTable(cc *CodeableConcept, table string, values map[string]bool) *CodeableConcept {
	for i, c := range cc.Coding {
		if c.System == "" && values[strings.ToUpper(c.Code)] {
			cc.Coding[i].System = "http://terminology.hl7.org/CodeSystem/v2-" + table
		}
	}
	return cc
}

// v2 table 0278 (filler status, SCH-25, AIS-10) → Appointment.status: the IG ConceptMap
// FillerStatusCodes[Appointment]; Overbook is a booking. Discontinued and Blocked have no
// status in the IG map.
var appointmentStatuses = map[string]string{
	"PENDING": "pending", "WAITLIST": "waitlist", "BOOKED": "booked", "STARTED": "checked-in",
	"COMPLETE": "fulfilled", "CANCELLED": "cancelled", "DELETED": "entered-in-error", "NOSHOW": "noshow",
	"OVERBOOK": "booked",
}

// eventStatuses are the statuses an event states whatever SCH-25 says: a cancellation (S15),
// a discontinuation (S16), a deletion (S17), a no-show (S26).
var eventStatuses = map[string]string{"S15": "cancelled", "S16": "cancelled", "S17": "entered-in-error", "S26": "noshow"}

// v2 table 0278 (AIG-14, AIL-12, AIP-12) → Appointment.participant.status.
var participantStatuses = map[string]string{
	"BOOKED": "accepted", "OVERBOOK": "accepted", "STARTED": "accepted", "COMPLETE": "accepted", "NOSHOW": "accepted",
	"PENDING": "tentative", "WAITLIST": "needs-action",
	"CANCELLED": "declined", "DELETED": "declined", "DISCONTINUED": "declined", "BLOCKED": "declined",
}

// statusOf0278 reads a table 0278 value by code or, as senders write it, by its text
// ("Booked").
func statusOf0278(v Value, table map[string]string) (string, bool) {
	for _, s := range []string{v.Get(1), v.Get(2)} {
		if st, ok := table[strings.ToUpper(strings.TrimSpace(s))]; ok {
			return st, true
		}
	}
	return "", false
}

// mapAppointment maps SCH, its NTE, TQ1 and the resource groups to the Appointment.
func mapAppointment(b *Builder, sch *hl7v2.Segment) error {
	a := &appointment{ResourceType: "Appointment", Meta: b.Meta("Appointment")}
	placer, hasPlacer := EI(FieldValue(sch, 1), b.Opts.ids())
	filler, hasFiller := EI(FieldValue(sch, 2), b.Opts.ids())
	var key Identifier
	switch {
	case hasFiller:
		key = keyOf(filler)
	case hasPlacer:
		key = keyOf(placer)
	default:
		return Unmappable("SCH-2", "no filler (SCH-2) or placer (SCH-1) appointment id")
	}
	if hasPlacer {
		placer.Type = typePlacer
		a.Identifier = append(a.Identifier, placer)
	}
	if hasFiller {
		filler.Type = typeFiller
		a.Identifier = append(a.Identifier, filler)
	}

	groups := appointmentSegments(b)
	trigger := strings.ToUpper(b.Msg.Type().Trigger)
	a.Status = appointmentStatus(b, sch, trigger, groups.ais)

	if cc, ok := CWE(FieldValue(sch, 7)); ok {
		if strings.EqualFold(FieldValue(sch, 7).Get(3), "HL70277") {
			a.AppointmentType = &cc
		} else {
			a.ReasonCode = []CodeableConcept{*inTable(&cc, "0276", table0276)}
		}
	}
	if cc, ok := CWE(FieldValue(sch, 8)); ok {
		a.AppointmentType = inTable(&cc, "0277", table0277)
	}
	a.MinutesDuration = minutes(b, "SCH-9", FieldValue(sch, 9).Get(1), FieldValue(sch, 10))
	for _, ais := range groups.ais {
		if cc, ok := CWE(FieldValue(ais, 3)); ok {
			a.ServiceType = append(a.ServiceType, cc)
		}
	}
	appointmentTimes(b, a, sch)
	a.Comment = noteText(groups.notes)
	for _, n := range []int{26, 27} {
		if id, ok := EI(FieldValue(sch, n), b.Opts.ids()); ok {
			a.BasedOn = append(a.BasedOn, &Reference{Type: "ServiceRequest", Identifier: &id})
		}
	}

	// The patient attends; their participation follows the appointment's status.
	if p := b.Patient(); p != nil {
		a.Participant = append(a.Participant, apptParticipant{Actor: p, Status: patientParticipation(a.Status)})
	}
	for _, seg := range groups.resources {
		if part, ok := resourceParticipant(b, seg, a.Status); ok {
			a.Participant = append(a.Participant, part)
		}
	}
	if len(a.Participant) == 0 {
		return Unmappable("PID", "the appointment has no patient (PID) and no resource (AIG, AIL, AIP); FHIR requires a participant")
	}
	b.Update("Appointment", key, a)
	return nil
}

// appointmentStatus: an event that states the outcome (S15, S16, S17, S26) wins; else the
// filler status (SCH-25, then the first AIS-10); else a booking, which every other SIU event
// (new, rescheduled, modified, resources added or changed) reports.
func appointmentStatus(b *Builder, sch *hl7v2.Segment, trigger string, ais []*hl7v2.Segment) string {
	if s, ok := eventStatuses[trigger]; ok {
		return s
	}
	if v := FieldValue(sch, 25); !v.IsEmpty() {
		if s, ok := statusOf0278(v, appointmentStatuses); ok {
			return s
		}
		b.Notef("SCH-25: filler status %q has no Appointment status; status from the event", v.Get(1))
	}
	for _, seg := range ais {
		if s, ok := statusOf0278(FieldValue(seg, 10), appointmentStatuses); ok {
			return s
		}
	}
	return "booked"
}

func patientParticipation(status string) string {
	switch status {
	case "cancelled", "entered-in-error":
		return "declined"
	case "proposed", "pending", "waitlist":
		return "needs-action"
	}
	return "accepted"
}

// siuSegments are the SIU segments the Appointment is built from.
type siuSegments struct {
	ais       []*hl7v2.Segment
	resources []*hl7v2.Segment // AIG, AIL, AIP in order
	notes     []*hl7v2.Segment // NTE of SCH and of AIS (IG NTE[Appointment-Comment])
}

// appointmentSegments collects and marks handled TQ1, RGS, AIS, AIG, AIL, AIP and the NTEs
// that follow SCH or an AIS. NTEs after AIG, AIL or AIP (notes about one resource) have no
// place in an R4 Appointment: they are noted.
func appointmentSegments(b *Builder) siuSegments {
	var (
		out   siuSegments
		owner string // the segment an NTE follows
	)
	for _, seg := range b.Msg.Segments("") {
		name := seg.Name()
		switch name {
		case "SCH", "AIS":
			if name == "AIS" {
				out.ais = append(out.ais, seg)
			}
			owner = name
		case "AIG", "AIL", "AIP":
			out.resources = append(out.resources, seg)
			owner = name
		case "NTE":
			switch owner {
			case "SCH", "AIS":
				out.notes = append(out.notes, seg)
			case "AIG", "AIL", "AIP":
				b.Notef("NTE(%d): note on %s not mapped (an R4 Appointment has no per-participant note)", seg.Index(), owner)
			default:
				continue
			}
		case "TQ1":
		case "RGS":
			owner = ""
		case "PID":
			owner = ""
			continue
		default:
			continue
		}
		b.MarkHandled(seg)
	}
	return out
}

// noteText joins the NTE-3 texts, one line each (IG: line feeds in one comment).
func noteText(ntes []*hl7v2.Segment) string {
	var lines []string
	for _, nte := range ntes {
		for v := range Repetitions(nte, 3) {
			if s := strings.TrimSpace(v.Get(1)); s != "" {
				lines = append(lines, s)
			}
		}
	}
	return strings.Join(lines, "\n")
}

// appointmentTimes sets start and end from TQ1-7/TQ1-8, else SCH-11.4/SCH-11.5 (TQ start and
// end date/time); an end that is missing is the start plus minutesDuration. Appointment.start
// and end are instants, given both or neither (app-2): what cannot be written that way is kept
// in requestedPeriod as dates, with a note.
func appointmentTimes(b *Builder, a *appointment, sch *hl7v2.Segment) {
	start, end := "", ""
	if tq1 := b.Msg.Segment("TQ1", 1); tq1 != nil {
		start, end = FieldValue(tq1, 7).Get(1), FieldValue(tq1, 8).Get(1)
	}
	if start == "" {
		tq := FieldValue(sch, 11)
		start, end = tq.Sub(4).Get(1), tq.Sub(5).Get(1)
	}
	if start == "" {
		return
	}
	s, okStart := Instant(start, b.Opts.Location)
	e, okEnd := Instant(end, b.Opts.Location)
	if okStart && end == "" && a.MinutesDuration > 0 {
		e, okEnd = addMinutes(start, a.MinutesDuration, b.Opts.Location)
	}
	if okStart && okEnd {
		a.Start, a.End = s, e
		return
	}
	b.Notef("TQ1-7/SCH-11: appointment start %q (end %q) is not a time with an offset, or has no end; kept as requestedPeriod", start, end)
	if p := period(DateTime(start, b.Opts.Location), DateTime(end, b.Opts.Location)); p != nil {
		a.RequestedPeriod = []Period{*p}
	}
}

// addMinutes is the instant n minutes after the DTM s.
func addMinutes(s string, n int, loc *time.Location) (string, bool) {
	t, p, ok := parseDTM(s, loc)
	if !ok || p < hl7v2.PrecisionMinute {
		return "", false
	}
	if _, ok := Instant(s, loc); !ok {
		return "", false
	}
	return formatDateTime(t.Add(time.Duration(n)*time.Minute), hl7v2.PrecisionSecond), true
}

// minutes reads a duration (NM) in units (CNE: minutes, hours or seconds, by code or text) as
// whole minutes; 0, with a note, when it is not one.
func minutes(b *Builder, field, value string, units Value) int {
	if value == "" {
		return 0
	}
	n, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
	unit := strings.ToLower(strings.TrimSpace(units.Get(1)))
	if unit == "" {
		unit = strings.ToLower(strings.TrimSpace(units.Get(2)))
	}
	var m float64
	switch unit {
	case "min", "mins", "minute", "minutes", "m":
		m = n
	case "h", "hr", "hrs", "hour", "hours":
		m = n * 60
	case "s", "sec", "secs", "second", "seconds":
		m = n / 60
	default:
		err = strconv.ErrSyntax
	}
	if err != nil || m < 1 || m != float64(int(m)) {
		b.Notef("%s: duration %q %q is not a whole number of minutes; not mapped", field, value, units.Get(1))
		return 0
	}
	return int(m)
}

// resourceParticipant maps an AIG (general resource: a Device by its id), AIL (a Location) or
// AIP (a Practitioner) to a participant with its type, status (filler status, else the
// appointment's) and period (start date/time and duration).
func resourceParticipant(b *Builder, seg *hl7v2.Segment, status string) (apptParticipant, bool) {
	var (
		p                                     apptParticipant
		typeField, startField, durField, stat int
	)
	switch seg.Name() {
	case "AIG":
		if cc, ok := CWE(FieldValue(seg, 3)); ok && len(cc.Coding) > 0 {
			c := cc.Coding[0]
			p.Actor = &Reference{Type: "Device", Identifier: &Identifier{System: c.System, Value: c.Code}, Display: c.Display}
		}
		typeField, startField, durField, stat = 4, 8, 11, 14
	case "AIL":
		p.Actor = b.PL(FieldValue(seg, 3))
		typeField, startField, durField, stat = 0, 6, 9, 12
	case "AIP":
		p.Actor = b.XCN(FieldValue(seg, 3))
		typeField, startField, durField, stat = 4, 6, 9, 12
	}
	if p.Actor == nil {
		b.Notef("%s(%d)-3: no resource id; participant not mapped", seg.Name(), seg.Index())
		return p, false
	}
	if typeField > 0 {
		if cc, ok := CWE(FieldValue(seg, typeField)); ok {
			p.Type = []CodeableConcept{cc}
		}
	}
	p.Status = patientParticipation(status)
	if v := FieldValue(seg, stat); !v.IsEmpty() {
		if s, ok := statusOf0278(v, participantStatuses); ok {
			p.Status = s
		}
	}
	if start := FieldValue(seg, startField).Get(1); start != "" {
		if s, ok := Instant(start, b.Opts.Location); ok {
			p.Period = &Period{Start: s}
			if d := minutes(b, seg.Name()+"-"+strconv.Itoa(durField), FieldValue(seg, durField).Get(1), FieldValue(seg, durField+1)); d > 0 {
				p.Period.End, _ = addMinutes(start, d, b.Opts.Location)
			}
		} else {
			b.Notef("%s(%d)-%d: start %q is not a time with an offset; participant period not mapped", seg.Name(), seg.Index(), startField, start)
		}
	}
	return p, true
}
