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

// LOINC report categories of US Core's DiagnosticReport note profile (value set
// us-core-diagnosticreport-category).
var (
	categoryRadiology  = Coding{System: systemLOINC, Code: "LP29684-5", Display: "Radiology"}
	categoryCardiology = Coding{System: systemLOINC, Code: "LP29708-2", Display: "Cardiology"}
	categoryPathology  = Coding{System: systemLOINC, Code: "LP7839-6", Display: "Pathology"}
)

// noteCategories maps v2 table 0074 sections (OBR-24) to those LOINC categories: imaging to
// Radiology, cardiac studies (echo, catheterisation, ECG) to Cardiology, pathology (surgical,
// cytopathology, histopathology) to Pathology.
var noteCategories = map[string]Coding{
	"RAD": categoryRadiology, "CT": categoryRadiology, "NMR": categoryRadiology, "NMS": categoryRadiology,
	"RUS": categoryRadiology, "OUS": categoryRadiology, "VUS": categoryRadiology, "RX": categoryRadiology,
	"XRC": categoryRadiology, "US": categoryRadiology,
	"CUS": categoryCardiology, "CTH": categoryCardiology, "EC": categoryCardiology,
	"SP": categoryPathology, "CP": categoryPathology, "PAT": categoryPathology,
}

// otherSections are table 0074 sections of reports that are neither laboratory nor have a
// LOINC category (audiology, therapies, nursing, physician notes…). The observation category
// does not name them (so their results stay "laboratory"), but their reports are not lab
// reports.
var otherSections = map[string]bool{
	"AU": true, "ICU": true, "NRS": true, "OT": true, "PT": true, "RC": true, "RT": true, "PHY": true, "PHR": true,
	"OTH": true,
}

// reportCategories returns a report's categories and profiles (prepended to the tenant's)
// from the order's category and OBR-24. A lab report claims us-core-diagnosticreport-lab,
// whose category slice requires v2-0074 LAB (OBR-24's own section is a second coding of it).
// Any other report (imaging, cardiology, pulmonary function…) claims
// us-core-diagnosticreport-note, which requires a category: OBR-24 in v2-0074, plus the LOINC
// category of the note profile's value set where the section has one. A pathology report is
// both: laboratory work issued as a pathology report.
func reportCategories(category, section string, tenant []string) ([]CodeableConcept, []string) {
	loinc, hasLOINC := noteCategories[section]
	var cats []CodeableConcept
	var profiles []string
	isLab := category == CategoryLaboratory && !otherSections[section]
	if isLab {
		lab := CodeableConcept{Coding: []Coding{{System: systemV20074, Code: "LAB", Display: "Laboratory"}}}
		if section != "" && section != "LAB" {
			lab.Coding = append(lab.Coding, Coding{System: systemV20074, Code: section})
		}
		cats, profiles = append(cats, lab), append(profiles, ProfileUSCoreDiagnosticReportL)
	} else {
		cats = append(cats, CodeableConcept{Coding: []Coding{{System: systemV20074, Code: section}}})
	}
	if hasLOINC {
		cats = append(cats, CodeableConcept{Coding: []Coding{loinc}})
	}
	if !isLab || hasLOINC {
		profiles = append(profiles, ProfileUSCoreDiagnosticReportN)
	}
	return cats, append(profiles, tenant...)
}

// reportMergedLists are the DiagnosticReport elements merged across messages rather than
// replaced (fhir.ExtMergeList): a message about a report carries the results it reports — a
// correction (OBR-25 C) only the corrected OBX — and the report keeps the others, with their
// specimens and performers.
var reportMergedLists = []fhir.Extension{
	fhir.MergeListExtension("result"), fhir.MergeListExtension("specimen"), fhir.MergeListExtension("performer"),
}

// mapDiagnosticReport maps the OBR of a result (IG OBR[DiagnosticReport]) with its
// Observations, Specimens and presentedForm (report documents and code-less report text). It is a conditional update whose
// scalar elements are those of the newest message and whose result, specimen and performer
// lists are merged across messages (reportMergedLists): a correction replaces the results
// it carries (they are keyed as the originals, see SystemV2Observation), an OBX-11 D result
// leaves the report, and every other result stays, whatever order the messages arrive in.
func mapDiagnosticReport(b *Builder, g *orderGroup, results, specs []*Reference, forms []labAttachment) {
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
	dr.Category, dr.Meta.Profile = reportCategories(g.category, Code(FieldValue(obr, 24)), dr.Meta.Profile)
	dr.Code = g.code
	effectiveField, effective := 7, FieldValue(obr, 7).Get(1)
	if effective == "" {
		effectiveField, effective = 8, FieldValue(obr, 8).Get(1)
	}
	if dr.EffectiveDateTime = b.DateTime(obr, effectiveField, effective); dr.EffectiveDateTime == "" {
		dr.EffectiveElement = AbsentElement() // US Core: effective[x] required for final reports
	}
	if s, ok := b.Instant(obr, 22, FieldValue(obr, 22).Get(1)); ok {
		dr.Issued = s
	} else if dr.Status != "registered" && dr.Status != "cancelled" && dr.Status != "unknown" {
		// us-core-9 (lab profile): a released report has issued; OBR-22 did not say when.
		dr.IssuedElement = AbsentElement()
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
	// Report text and documents without a title of their own are titled with the report's name.
	for i := range forms {
		if forms[i].Title == "" {
			forms[i].Title = conceptText(dr.Code)
		}
	}
	dr.PresentedForm = forms
	b.Update("DiagnosticReport", key, dr)
}
