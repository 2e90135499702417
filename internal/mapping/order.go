package mapping

import (
	"strconv"
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
	category string          // of the order, from OBR-24: laboratory unless it says otherwise
	report   bool            // the group's results make a DiagnosticReport (ORU with an OBR)
	code     CodeableConcept // OBR-4 (orderCode), read once for the keys, ServiceRequest and report
	// parent is the order a child order (OBR-29) is based on: the reference to its
	// ServiceRequest when it is in the message, else one by its number; nil when none.
	parent *Reference
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

// Order identity. An OBR group is one order, and what identifies it in every message about it
// (ORM, preliminary and final ORU, corrections) is its order number together with the service
// it orders: senders give several OBRs of one accession or requisition the same filler (OBR-3)
// or placer (OBR-2) number — newborn screening panels, the panels of one public-health
// specimen, the reflex and susceptibility orders of a culture — and a key on the number alone
// would merge them into one ServiceRequest and one DiagnosticReport. So every order is keyed
// under SystemV2Order as
//
//	<number system>|<number>|<OBR-4 system>|<OBR-4 code>[|<OBR-26.1 system>|<OBR-26.1 code>|<OBR-26.2>]
//
// where the number is the placer number (OBR-2, else ORC-2) for the ServiceRequest, so that an
// ORM and the ORU that answers it meet, and the filler number (OBR-3, else ORC-3) for the
// DiagnosticReport and the Observations under it, the lab's own report id; each falls back to
// the other. OBR-26 (parent result: the parent's OBX-3 and OBX-4) is added for a child order,
// so that the susceptibility panels of two isolates of one culture stay apart. A child order
// without numbers of its own is keyed on its parent's (OBR-29: filler, else placer), an order
// with none at all keeps derivedOrderKey. Nothing in the key depends on the other OBRs
// of the message or on OBR-1, so a later message about one panel keys it as the first did;
// only when one message orders the same service twice under one number (and parent) do the
// later ones get "|#<OBR-1>", with a note. The placer and filler numbers themselves stay the
// resources' PLAC and FILL identifiers.
func orderKey(b *Builder, g *orderGroup, typ string, number Identifier) Identifier {
	sys, code := conceptKey(g.code)
	key := Identifier{System: SystemV2Order, Value: number.System + "|" + number.Value + "|" + sys + "|" + code}
	if parent := FieldValue(g.obr, 26); !parent.IsEmpty() {
		key.Value += "|" + CodingSystem(parent.Sub(1).Get(3)) + "|" + parent.Sub(1).Get(1) + "|" + parent.Get(2)
	}
	if b.Has(typ, key) {
		// OBR-1, else (an ORC without OBR, a sender leaving OBR-1 empty) the segment's
		// position, which only this message's own duplicates depend on.
		set := FieldValue(g.obr, 1).Get(1)
		if set == "" {
			seg := g.obr
			if seg == nil {
				seg = g.orc
			}
			set = seg.Name() + strconv.Itoa(seg.Index())
		}
		b.Notef("ORC/OBR-2, -3: order number %s with service %q repeated in the message; %s keyed on it with %q", number.Value, code, typ, set)
		key.Value += "|#" + set
	}
	return key
}

// conceptKey is the system and code of the first coding of cc, or no system and the text
// when it has no coding: what identifies the concept in a key.
func conceptKey(cc CodeableConcept) (system, code string) {
	if len(cc.Coding) > 0 {
		return cc.Coding[0].System, cc.Coding[0].Code
	}
	return "", cc.Text
}

// orderKeys sets the group's ServiceRequest key (g.srKey) and, for a result, the key of its
// DiagnosticReport and Observations (g.resKey); see orderKey. An ORM's Observations are keyed
// under its ServiceRequest key.
func orderKeys(b *Builder, g *orderGroup, isResult bool) {
	g.code = orderCode(g)
	placer, filler, hasPlacer, hasFiller := orderNumbers(b, g)
	if g.obr == nil && (hasPlacer || hasFiller) {
		b.Notef("ORC(%d): order without OBR; keyed on its number without a service, it does not update an order mapped with its OBR", g.orc.Index())
	}
	parent, hasParent := parentNumber(b, g)
	switch {
	case hasPlacer:
		g.srKey = orderKey(b, g, "ServiceRequest", placer)
	case hasFiller:
		g.srKey = orderKey(b, g, "ServiceRequest", filler)
	case hasParent:
		g.srKey = orderKey(b, g, "ServiceRequest", parent)
	default:
		g.srKey = derivedOrderKey(b, g)
	}
	switch {
	case !isResult:
		g.resKey = g.srKey
	case hasFiller:
		g.resKey = orderKey(b, g, "DiagnosticReport", filler)
	case hasPlacer:
		g.resKey = orderKey(b, g, "DiagnosticReport", placer)
	case hasParent:
		g.resKey = orderKey(b, g, "DiagnosticReport", parent)
	default:
		g.resKey = g.srKey
	}
}

// parentNumber is the number of the order a child order is based on (OBR-29, EIP): the
// parent's filler number, else its placer number, typed FILL or PLAC.
func parentNumber(b *Builder, g *orderGroup) (Identifier, bool) {
	eip := FieldValue(g.obr, 29)
	if eip.IsEmpty() {
		return Identifier{}, false
	}
	if id, ok := EI(eip.Sub(2), b.Opts.ids()); ok {
		id.Type = typeFiller
		return id, true
	}
	if id, ok := EI(eip.Sub(1), b.Opts.ids()); ok {
		id.Type = typePlacer
		return id, true
	}
	return Identifier{}, false
}

// parentOrder resolves a child order's parent (OBR-29, IG OBR[ServiceRequest] basedOn): the
// ServiceRequest of an earlier group of the message that carries the parent's number as its
// ORC or OBR placer or filler number — when several do (one accession number on several
// OBRs), the one holding the parent result OBR-26 names — else a reference by that number.
func parentOrder(b *Builder, g *orderGroup, earlier []*orderGroup) *Reference {
	number, ok := parentNumber(b, g)
	if !ok {
		return nil
	}
	var match []*orderGroup
	for _, p := range earlier {
		if p.sr != nil && carriesNumber(b, p, number) {
			match = append(match, p)
		}
	}
	if len(match) > 1 {
		prl := FieldValue(g.obr, 26)
		code, sub := prl.Sub(1).Get(1), prl.Get(2)
		for _, p := range match {
			for _, r := range p.results {
				if code != "" && FieldValue(r.obx, 3).Get(1) == code && FieldValue(r.obx, 4).Get(1) == sub {
					return p.sr
				}
			}
		}
	}
	if len(match) == 1 {
		return match[0].sr
	}
	return &Reference{Type: "ServiceRequest", Identifier: &number}
}

// carriesNumber reports whether group g has number among its ORC and OBR placer and filler
// numbers.
func carriesNumber(b *Builder, g *orderGroup, number Identifier) bool {
	for _, s := range []*hl7v2.Segment{g.obr, g.orc} {
		if s == nil {
			continue
		}
		for _, n := range []int{2, 3} {
			if id, ok := EI(FieldValue(s, n), b.Opts.ids()); ok && id.System == number.System && id.Value == number.Value {
				return true
			}
		}
	}
	return false
}

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
// OBR[ServiceRequest]), keyed on g.srKey (see orderKey). supporting are the ORM's OBX
// observations. Sets g.sr.
func mapServiceRequest(b *Builder, g *orderGroup, isResult bool, supporting []*Reference) {
	placer, filler, hasPlacer, hasFiller := orderNumbers(b, g)
	sr := &serviceRequest{ResourceType: "ServiceRequest", Meta: b.Meta("ServiceRequest"), Intent: "order", Subject: b.Patient(), Encounter: b.Encounter()}
	sr.Identifier = make([]Identifier, 0, 3)
	if hasPlacer {
		sr.Identifier = append(sr.Identifier, placer)
	}
	if hasFiller {
		sr.Identifier = append(sr.Identifier, filler)
	}
	sr.Identifier = append(sr.Identifier, g.srKey)
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
	sr.Code = g.code
	sr.OccurrenceDateTime = b.DateTime(g.obr, 6, FieldValue(g.obr, 6).Get(1))
	if sr.OccurrenceDateTime == "" {
		sr.OccurrenceDateTime = b.DateTime(g.orc, 7, FieldValue(g.orc, 7).Sub(4).Get(1))
	}
	sr.AuthoredOn = b.DateTime(g.orc, 9, FieldValue(g.orc, 9).Get(1))
	sr.Requester = b.XCN(FieldValue(g.orc, 12))
	if sr.Requester == nil {
		sr.Requester = b.XCN(FieldValue(g.obr, 16))
	}
	for v := range Repetitions(g.obr, 31) {
		if cc, ok := CWE(v); ok {
			sr.ReasonCode = append(sr.ReasonCode, cc)
		}
	}
	if g.parent != nil {
		sr.BasedOn = []*Reference{g.parent}
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
			Time:            b.DateTime(nte, 6, FieldValue(nte, 6).Get(1)),
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
	groups := orderGroups(b)
	for i, g := range groups {
		g.category = ObservationCategory(CodeableConcept{}, FieldValue(g.obr, 24).Get(1))
		g.parent = parentOrder(b, g, groups[:i])
		switch {
		case g.orc == nil && g.obr == nil:
			// Results outside any order: keyed on the patient.
			pk := b.PatientKey()
			g.resKey = Identifier{System: SystemV2Order, Value: pk.System + "|" + pk.Value + "||"}
			mapResults(b, g, nil)
		case isResult:
			orderKeys(b, g, true)
			mapServiceRequest(b, g, true, nil)
			specs := mapSpecimens(b, g)
			var spec *Reference
			if len(specs) > 0 {
				spec = specs[0]
			}
			g.report = g.obr != nil
			results, text := mapResults(b, g, spec)
			if g.obr != nil {
				mapDiagnosticReport(b, g, results, specs, text)
			}
		default:
			// The ORM's OBX are the order's supporting information, keyed under its order
			// key, and mapped before the ServiceRequest that references them. Its SPM (OML)
			// come before it too: ServiceRequest.specimen points back at them.
			orderKeys(b, g, false)
			supporting, _ := mapResults(b, g, nil)
			g.specimens = mapSpecimens(b, g)
			mapServiceRequest(b, g, false, supporting)
		}
	}
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
