package mapping

// v2 table 0123 (result status, OBR-25) → DiagnosticReport.status: the IG ConceptMap
// ResultStatus[Non-Queries], completed where it is silent: A (some results) and N (procedure
// done, results pending) partial, M (corrected, not final) corrected. Empty is "unknown".
var reportStatuses = map[string]string{
	"O": "registered", "I": "registered", "S": "registered", "A": "partial", "P": "preliminary",
	"C": "corrected", "M": "corrected", "R": "partial", "N": "partial", "F": "final", "X": "cancelled",
}

// systemV20074 is table 0074 (diagnostic service section), whose LAB code US Core's lab
// report category slice requires.
const systemV20074 = "http://terminology.hl7.org/CodeSystem/v2-0074"

// reportKey is the DiagnosticReport's conditional key, which also keys its Observations: the
// filler number (the lab's own report id), else the placer number, else the order's key.
func reportKey(b *Builder, g *orderGroup) Identifier {
	placer, filler, hasPlacer, hasFiller := orderNumbers(b, g)
	switch {
	case hasFiller && !b.Has("DiagnosticReport", keyOf(filler)):
		return keyOf(filler)
	case hasPlacer && !b.Has("DiagnosticReport", keyOf(placer)):
		return keyOf(placer)
	}
	return g.srKey
}

// mapDiagnosticReport maps the OBR of a result (IG OBR[DiagnosticReport]) with its
// Observations, Specimens and code-less report text. It is a conditional update: corrected
// and final reports replace preliminary ones.
func mapDiagnosticReport(b *Builder, g *orderGroup, results, specs []*Reference, text []string) {
	obr := g.obr
	dr := &diagnosticReport{ResourceType: "DiagnosticReport", Meta: b.Meta("DiagnosticReport"), Subject: b.Patient(), Encounter: b.Encounter()}
	placer, filler, hasPlacer, hasFiller := orderNumbers(b, g)
	if hasFiller {
		dr.Identifier = append(dr.Identifier, filler)
	}
	if hasPlacer {
		dr.Identifier = append(dr.Identifier, placer)
	}
	key := g.resKey
	if !hasFiller && !hasPlacer || (key.Value != filler.Value && key.Value != placer.Value) {
		dr.Identifier = append(dr.Identifier, key)
	}
	dr.BasedOn = []*Reference{g.sr}
	dr.Status = reportStatuses[Code(FieldValue(obr, 25))]
	if dr.Status == "" {
		dr.Status = "unknown"
	}
	section := Code(FieldValue(obr, 24))
	if g.category == CategoryLaboratory {
		dr.Category = []CodeableConcept{{Coding: []Coding{{System: systemV20074, Code: "LAB", Display: "Laboratory"}}}}
		dr.Meta.Profile = append([]string{ProfileUSCoreDiagnosticReportL}, dr.Meta.Profile...)
		if section != "" && section != "LAB" {
			dr.Category[0].Coding = append(dr.Category[0].Coding, Coding{System: systemV20074, Code: section})
		}
	} else {
		// Not a lab report (imaging, cardiology…): US Core's note profile wants LOINC
		// categories v2 does not carry, so no profile is claimed.
		dr.Category = []CodeableConcept{{Coding: []Coding{{System: systemV20074, Code: section}}}}
	}
	dr.Code = orderCode(g)
	effectiveField, effective := 7, FieldValue(obr, 7).Get(1)
	if effective == "" {
		effectiveField, effective = 8, FieldValue(obr, 8).Get(1)
	}
	if dr.EffectiveDateTime = b.DateTime(obr, effectiveField, effective); dr.EffectiveDateTime == "" {
		dr.EffectiveElement = AbsentElement() // US Core: effective[x] required for final reports
	}
	if s, ok := b.Instant(obr, 22, FieldValue(obr, 22).Get(1)); ok {
		dr.Issued = s
	}
	// Performers are the organisations that produced the results (OBX-23), once each.
	seen := map[string]bool{}
	for _, r := range g.results {
		if ref := b.XON(FieldValue(r.obx, 23)); ref != nil && !seen[ref.Reference+ref.Display] {
			seen[ref.Reference+ref.Display] = true
			dr.Performer = append(dr.Performer, ref)
		}
	}
	if ref := b.XCN(FieldValue(obr, 32).Sub(1)); ref != nil {
		dr.ResultsInterpreter = []*Reference{ref}
	}
	dr.Specimen = specs
	dr.Result = results
	if len(text) > 0 {
		dr.PresentedForm = []Attachment{textAttachment(text)}
	}
	b.Update("DiagnosticReport", key, dr)
}
