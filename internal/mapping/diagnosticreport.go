package mapping

import (
	"slices"

	"github.com/nhp/interop/internal/fhir"
)

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

// reportMergedLists are the DiagnosticReport elements merged across messages rather than
// replaced (fhir.ExtMergeList): a message about a report carries the results it reports — a
// correction (OBR-25 C) only the corrected OBX — and the report keeps the others, with their
// specimens and performers.
var reportMergedLists = []fhir.Extension{
	fhir.MergeListExtension("result"), fhir.MergeListExtension("specimen"), fhir.MergeListExtension("performer"),
}

// mapDiagnosticReport maps the OBR of a result (IG OBR[DiagnosticReport]) with its
// Observations, Specimens and code-less report text. It is a conditional update whose
// scalar elements are those of the newest message and whose result, specimen and performer
// lists are merged across messages (reportMergedLists): a correction replaces the results
// it carries (they are keyed as the originals, see SystemV2Observation), an OBX-11 D result
// leaves the report, and every other result stays, whatever order the messages arrive in.
func mapDiagnosticReport(b *Builder, g *orderGroup, results, specs []*Reference, text []string) {
	obr := g.obr
	dr := &diagnosticReport{ResourceType: "DiagnosticReport", Meta: b.Meta("DiagnosticReport"), Subject: b.Patient(), Encounter: b.Encounter()}
	dr.Meta.Extension = slices.Concat(dr.Meta.Extension, reportMergedLists)
	dr.Identifier = make([]Identifier, 0, 3)
	placer, filler, hasPlacer, hasFiller := orderNumbers(b, g)
	if hasFiller {
		dr.Identifier = append(dr.Identifier, filler)
	}
	if hasPlacer {
		dr.Identifier = append(dr.Identifier, placer)
	}
	key := g.resKey // see orderKey
	dr.Identifier = append(dr.Identifier, key)
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
	dr.Code = g.code
	effective := FieldValue(obr, 7).Get(1)
	if effective == "" {
		effective = FieldValue(obr, 8).Get(1)
	}
	if dr.EffectiveDateTime = DateTime(effective, b.Opts.Location); dr.EffectiveDateTime == "" {
		dr.EffectiveElement = AbsentElement() // US Core: effective[x] required for final reports
	}
	if s, ok := Instant(FieldValue(obr, 22).Get(1), b.Opts.Location); ok {
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
