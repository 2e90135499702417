package mapping

import (
	"strings"

	"github.com/nhp/interop/internal/hl7v2"
)

// orderGroup is one order of an ORU or ORM: an OBR with the ORC that precedes it (an ORC
// applies to the OBRs after it until the next ORC), the NTEs that follow the ORC/OBR, its
// OBX results with their NTEs, and its SPM specimens. An ORC without an OBR (ORM) is a group
// too; OBX before any ORC/OBR form a group with neither.
type orderGroup struct {
	orc, obr *hl7v2.Segment
	notes    []*hl7v2.Segment
	results  []*result
	specs    []*hl7v2.Segment

	specimens []*Reference // an order's (OML) Specimens, mapped before its ServiceRequest

	srKey    Identifier // the ServiceRequest's conditional key (zero when no order)
	resKey   Identifier // the key Observations are keyed under (see SystemV2Observation)
	sr       *Reference
	category string // of the order, from OBR-24: laboratory unless it says otherwise
}

type result struct {
	obx   *hl7v2.Segment
	notes []*hl7v2.Segment
}

// orderGroups splits the message's order segments into groups, marking each handled.
func orderGroups(b *Builder) []*orderGroup {
	var (
		groups []*orderGroup
		cur    *orderGroup
		last   *result // the OBX an NTE follows, nil when it follows ORC/OBR
	)
	for _, seg := range b.Msg.Segments("") {
		switch seg.Name() {
		case "ORC":
			cur = &orderGroup{orc: seg}
			groups, last = append(groups, cur), nil
		case "OBR":
			if cur == nil || cur.obr != nil || len(cur.results) > 0 {
				g := &orderGroup{obr: seg}
				if cur != nil && cur.obr != nil {
					g.orc = cur.orc // the ORC governs every OBR until the next ORC
				}
				cur = g
				groups = append(groups, cur)
			} else {
				cur.obr = seg
			}
			last = nil
		case "OBX":
			if cur == nil {
				cur = &orderGroup{}
				groups = append(groups, cur)
			}
			last = &result{obx: seg}
			cur.results = append(cur.results, last)
		case "NTE":
			switch {
			case last != nil:
				last.notes = append(last.notes, seg)
			case cur != nil:
				cur.notes = append(cur.notes, seg)
			default:
				continue // a patient note (after PID): not an order's
			}
		case "SPM":
			if cur == nil {
				continue
			}
			cur.specs = append(cur.specs, seg)
		default:
			continue
		}
		b.MarkHandled(seg)
	}
	return groups
}

var (
	typePlacer = &CodeableConcept{Coding: []Coding{{System: systemV20203, Code: "PLAC", Display: "Placer Identifier"}}}
	typeFiller = &CodeableConcept{Coding: []Coding{{System: systemV20203, Code: "FILL", Display: "Filler Identifier"}}}
)

// orderNumbers returns the placer (OBR-2, else ORC-2) and filler (OBR-3, else ORC-3) numbers,
// typed PLAC and FILL.
func orderNumbers(b *Builder, g *orderGroup) (placer, filler Identifier, hasPlacer, hasFiller bool) {
	for _, s := range []*hl7v2.Segment{g.obr, g.orc} {
		if !hasPlacer && s != nil {
			if placer, hasPlacer = EI(FieldValue(s, 2), b.Opts.ids()); hasPlacer {
				placer.Type = typePlacer
			}
		}
		if !hasFiller && s != nil {
			if filler, hasFiller = EI(FieldValue(s, 3), b.Opts.ids()); hasFiller {
				filler.Type = typeFiller
			}
		}
	}
	return placer, filler, hasPlacer, hasFiller
}

func keyOf(id Identifier) Identifier { return Identifier{System: id.System, Value: id.Value} }

// derivedOrderKey keys an order without placer or filler number on the patient, the service
// (OBR-4.1) and the observation time (OBR-7), which every message about it repeats.
func derivedOrderKey(b *Builder, g *orderGroup) Identifier {
	pk := b.PatientKey()
	return Identifier{System: SystemV2Order, Value: pk.System + "|" + pk.Value + "|" + FieldValue(g.obr, 4).Get(1) + "|" + FieldValue(g.obr, 7).Get(1)}
}

// v2 table 0038 (order status, ORC-5) → ServiceRequest.status: the IG ConceptMap OrderStatus.
var orderStatuses = map[string]string{
	"CA": "revoked", "CM": "completed", "DC": "revoked", "ER": "entered-in-error", "HD": "on-hold",
	"IP": "active", "RP": "revoked", "SC": "active",
}

// v2 table 0119 (order control, ORC-1) → ServiceRequest.status: the IG ConceptMap
// OrderControlCode[ServiceRequest.status], except CA (cancel request), which we read as what
// it asks for.
var orderControlStatuses = map[string]string{
	"AF": "active", "CA": "revoked", "CR": "revoked", "DC": "revoked", "DF": "revoked", "DR": "revoked",
	"FU": "completed", "HD": "active", "HR": "on-hold", "NW": "active", "OC": "revoked", "OD": "revoked",
	"OH": "on-hold", "OK": "active", "PR": "active", "PY": "active", "RL": "active", "RO": "active", "RQ": "active",
}

// serviceRequestStatus reads ORC-5, else ORC-1; without either, an ORU's order whose results
// are final (OBR-25 F or C) is completed and an ORM's is active.
func serviceRequestStatus(g *orderGroup, isResult bool) string {
	if s, ok := orderStatuses[Code(FieldValue(g.orc, 5))]; ok {
		return s
	}
	if s, ok := orderControlStatuses[Code(FieldValue(g.orc, 1))]; ok {
		return s
	}
	if !isResult {
		return "active"
	}
	switch Code(FieldValue(g.obr, 25)) {
	case "F", "C":
		return "completed"
	case "":
		return "unknown"
	}
	return "active"
}

// v2 priority (OBR-5 before 2.7, TQ1-9 / ORC-7.6) → request-priority.
var priorities = map[string]string{"S": "stat", "A": "asap", "R": "routine", "P": "urgent", "C": "urgent", "T": "urgent"}

// serviceRequestCategories are US Core's ServiceRequest categories (SNOMED CT) for the order's
// observation category.
var serviceRequestCategories = map[string]Coding{
	CategoryLaboratory: {System: "http://snomed.info/sct", Code: "108252007", Display: "Laboratory procedure"},
	CategoryImaging:    {System: "http://snomed.info/sct", Code: "363679005", Display: "Imaging"},
	CategoryProcedure:  {System: "http://snomed.info/sct", Code: "387713003", Display: "Surgical procedure"},
}

// mapServiceRequest maps ORC and OBR to the ServiceRequest (IG ORC[ServiceRequest],
// OBR[ServiceRequest]), keyed on the placer number, else the filler number, else
// SystemV2Order. A placer number that several OBRs of the message share (one requisition, many
// services) keys the first; the others fall back to their filler number. supporting are the
// ORM's OBX observations. Sets g.sr and g.srKey.
func mapServiceRequest(b *Builder, g *orderGroup, isResult bool, supporting []*Reference) {
	placer, filler, hasPlacer, hasFiller := orderNumbers(b, g)
	sr := &serviceRequest{ResourceType: "ServiceRequest", Meta: b.Meta("ServiceRequest"), Intent: "order", Subject: b.Patient(), Encounter: b.Encounter()}
	switch {
	case hasPlacer && !b.Has("ServiceRequest", keyOf(placer)):
		g.srKey = keyOf(placer)
	case hasFiller:
		g.srKey = keyOf(filler)
	case hasPlacer:
		g.srKey = Identifier{System: placer.System, Value: placer.Value + "|" + FieldValue(g.obr, 1).Get(1)}
		b.Notef("OBR-2: placer number %s repeated; order keyed on it with OBR-1", placer.Value)
	default:
		g.srKey = derivedOrderKey(b, g)
	}
	if hasPlacer {
		sr.Identifier = append(sr.Identifier, placer)
	}
	if hasFiller {
		sr.Identifier = append(sr.Identifier, filler)
	}
	if g.srKey.System == SystemV2Order || (hasPlacer && g.srKey.Value != placer.Value && g.srKey.Value != filler.Value) {
		sr.Identifier = append(sr.Identifier, g.srKey)
	}
	if id, ok := EI(FieldValue(g.orc, 4), b.Opts.ids()); ok {
		sr.Requisition = &id // placer group number
	}
	sr.Status = serviceRequestStatus(g, isResult)
	if c, ok := serviceRequestCategories[g.category]; ok {
		sr.Category = []CodeableConcept{{Coding: []Coding{c}}}
	}
	prio := Code(FieldValue(g.obr, 5))
	if prio == "" {
		prio = strings.ToUpper(FieldValue(g.orc, 7).Get(6))
	}
	sr.Priority = priorities[prio]
	sr.Code = orderCode(g)
	sr.OccurrenceDateTime = DateTime(FieldValue(g.obr, 6).Get(1), b.Opts.Location)
	if sr.OccurrenceDateTime == "" {
		sr.OccurrenceDateTime = DateTime(FieldValue(g.orc, 7).Sub(4).Get(1), b.Opts.Location)
	}
	sr.AuthoredOn = DateTime(FieldValue(g.orc, 9).Get(1), b.Opts.Location)
	sr.Requester = b.XCN(FieldValue(g.orc, 12))
	if sr.Requester == nil {
		sr.Requester = b.XCN(FieldValue(g.obr, 16))
	}
	for v := range Repetitions(g.obr, 31) {
		if cc, ok := CWE(v); ok {
			sr.ReasonCode = append(sr.ReasonCode, cc)
		}
	}
	sr.SupportingInfo = supporting
	sr.Specimen = g.specimens
	if !isResult {
		sr.Note = annotations(b, g.notes)
	}
	g.sr = b.Update("ServiceRequest", g.srKey, sr)
}

// orderCode is OBR-4 (universal service identifier); an ORC without an OBR has none, which
// US Core's required code gets as a data-absent-reason.
func orderCode(g *orderGroup) CodeableConcept {
	if cc, ok := CWE(FieldValue(g.obr, 4)); ok {
		return cc
	}
	return CodeableConcept{Extension: Absent()}
}

// annotations maps NTE segments (IG NTE[Observation], NTE[ServiceRequest]): NTE-3 text (its
// repetitions are lines), NTE-5 entered by, NTE-6 entered date. NTEs without text are skipped.
func annotations(b *Builder, ntes []*hl7v2.Segment) []annotation {
	var out []annotation
	for _, nte := range ntes {
		var lines []string
		for v := range Repetitions(nte, 3) {
			lines = append(lines, v.Get(1))
		}
		text := strings.TrimRight(strings.Join(lines, "\n"), " \n")
		if strings.TrimSpace(text) == "" {
			continue
		}
		out = append(out, annotation{
			AuthorReference: b.XCN(FieldValue(nte, 5)),
			Time:            DateTime(FieldValue(nte, 6).Get(1), b.Opts.Location),
			Text:            text,
		})
	}
	return out
}

// mapOrders maps every order group of an ORU (isResult) or ORM: ServiceRequest, Specimens,
// Observations and, for results, the DiagnosticReport. Entries are added so that every
// reference points back: ORU ServiceRequest → Specimen → Observations → DiagnosticReport; ORM
// Observations (supporting information) → ServiceRequest.
func mapOrders(b *Builder, isResult bool) {
	for _, g := range orderGroups(b) {
		g.category = ObservationCategory(CodeableConcept{}, FieldValue(g.obr, 24).Get(1))
		switch {
		case g.orc == nil && g.obr == nil:
			// Results outside any order: keyed on the patient.
			pk := b.PatientKey()
			g.resKey = Identifier{System: SystemV2Order, Value: pk.System + "|" + pk.Value + "||"}
			mapResults(b, g, nil)
		case isResult:
			mapServiceRequest(b, g, true, nil)
			g.resKey = reportKey(b, g)
			specs := mapSpecimens(b, g)
			var spec *Reference
			if len(specs) > 0 {
				spec = specs[0]
			}
			results, text := mapResults(b, g, spec)
			if g.obr != nil {
				mapDiagnosticReport(b, g, results, specs, text)
			}
		default:
			// The order's OBX are its supporting information; they are keyed on the order key
			// the ServiceRequest will take, which only depends on its numbers. Its SPM (OML)
			// come before it too: ServiceRequest.specimen points back at them.
			g.resKey = ormResultKey(b, g)
			supporting, _ := mapResults(b, g, nil)
			g.specimens = mapSpecimens(b, g)
			mapServiceRequest(b, g, false, supporting)
		}
	}
}

// ormResultKey predicts the order key of an ORM group before its ServiceRequest exists.
func ormResultKey(b *Builder, g *orderGroup) Identifier {
	placer, filler, hasPlacer, hasFiller := orderNumbers(b, g)
	switch {
	case hasPlacer:
		return keyOf(placer)
	case hasFiller:
		return keyOf(filler)
	}
	return derivedOrderKey(b, g)
}

// isCode reports whether s is one of codes.
func isCode(s string, codes ...string) bool {
	for _, c := range codes {
		if s == c {
			return true
		}
	}
	return false
}
