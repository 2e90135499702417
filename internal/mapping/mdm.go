package mapping

import (
	"encoding/base64"
	"strings"

	"github.com/nhp/interop/internal/fhir"
	"github.com/nhp/interop/internal/hl7v2"
)

func init() {
	RegisterMessage("MDM_T01", mapMDM) // T01, T03, T05, T07, T09, T11: notifications
	RegisterMessage("MDM_T02", mapMDM) // T02, T04, T06, T08, T10: with the document's content
}

// mapMDM maps a medical document management message (IG MDM_T02): the patient, the visit,
// the orders the document answers (COMMON_ORDER ORC/OBR → ServiceRequest), and the document
// (TXA[DocumentReference], OBX[DocumentReference]) keyed on TXA-12.
//
// A message with content (OBX) writes the whole DocumentReference (a conditional update): the
// sender's latest state of the document. A notification without content (T01, T03, T05, T07,
// T09 as HL7 defines them) cannot say what the content is, and an update would replace the
// content an earlier T02 stored; it creates the DocumentReference only if it does not exist
// yet, and a note says that an existing one is left as it is. A cancel (T11) is the exception:
// it must reach the document, so it updates it to entered-in-error (its content then stays
// only in the resource's history).
func mapMDM(b *Builder) error {
	if err := mapPatient(b); err != nil {
		return err
	}
	if err := mapEncounter(b, b.Msg.Type().Trigger); err != nil {
		return err
	}
	var (
		related []*Reference
		content []*result
	)
	// orderGroups puts the document's OBX (after TXA) into the last order's results; in an
	// MDM they are the document, not observations.
	for _, g := range orderGroups(b) {
		content = append(content, g.results...)
		g.results = nil
		if g.orc == nil && g.obr == nil {
			continue
		}
		g.category = ObservationCategory(CodeableConcept{}, FieldValue(g.obr, 24).Get(1))
		orderKeys(b, g, false)
		mapServiceRequest(b, g, false, nil)
		related = append(related, g.sr)
	}
	txa := b.Msg.Segment("TXA", 1)
	if txa == nil {
		// The patient and the orders still map; without TXA nothing says what the document is.
		b.Notef("TXA: %s has no TXA segment; no DocumentReference (%d OBX not mapped)", b.Msg.Type(), len(content))
		return b.MapSegments()
	}
	b.MarkHandled(txa)
	mapDocument(b, txa, content, related)
	return b.MapSegments()
}

// documentCategory is US Core's category of clinical notes, which every MDM document is.
var documentCategory = CodeableConcept{Coding: []Coding{{
	System: "http://hl7.org/fhir/us/core/CodeSystem/us-core-documentreference-category", Code: "clinical-note", Display: "Clinical Note",
}}}

// documentTypes translates HL7 table 0270 (document type, TXA-2) to the LOINC document codes
// US Core's required binding of DocumentReference.type asks for. Codes without a clear LOINC
// counterpart (CD, PC, PH) are left out: the type then carries NullFlavor UNK beside them.
var documentTypes = map[string]Coding{
	"AR": {System: systemLOINC, Code: "18743-5", Display: "Autopsy report"},
	"CN": {System: systemLOINC, Code: "11488-4", Display: "Consult note"},
	"DI": {System: systemLOINC, Code: "18748-4", Display: "Diagnostic imaging study"},
	"DS": {System: systemLOINC, Code: "18842-5", Display: "Discharge summary"},
	"ED": {System: systemLOINC, Code: "34111-5", Display: "Emergency department note"},
	"HP": {System: systemLOINC, Code: "34117-2", Display: "History and physical note"},
	"OP": {System: systemLOINC, Code: "11504-8", Display: "Surgical operation note"},
	"PN": {System: systemLOINC, Code: "28570-0", Display: "Procedure note"},
	"PR": {System: systemLOINC, Code: "11506-3", Display: "Progress note"},
	"SP": {System: systemLOINC, Code: "11526-1", Display: "Pathology study"},
	"TS": {System: systemLOINC, Code: "18761-7", Display: "Transfer summary note"},
}

var codingUnknown = Coding{System: "http://terminology.hl7.org/CodeSystem/v3-NullFlavor", Code: "UNK", Display: "unknown"}

// documentType is TXA-2 with, when it has no LOINC coding, the LOINC code of its table 0270
// code, else NullFlavor UNK (the only non-LOINC code US Core's binding allows).
func documentType(v Value) *CodeableConcept {
	cc, _ := CWE(v)
	const v20270 = "http://terminology.hl7.org/CodeSystem/v2-0270"
	for _, c := range cc.Coding {
		if c.System == systemLOINC {
			return &cc
		}
	}
	for i, c := range cc.Coding {
		if c.System == "" || c.System == v20270 {
			if loinc, ok := documentTypes[strings.ToUpper(c.Code)]; ok {
				if c.System == "" {
					cc.Coding[i].System = v20270
				}
				cc.Coding = append(cc.Coding, loinc)
				return &cc
			}
		}
	}
	cc.Coding = append(cc.Coding, codingUnknown)
	return &cc
}

// v2 table 0271 (document completion status, TXA-17) → DocumentReference.docStatus: only
// authenticated documents are final; dictated, documented, in progress, incomplete and
// pre-authenticated ones are preliminary.
var docStatuses = map[string]string{
	"AU": "final", "LA": "final", "DI": "preliminary", "DO": "preliminary", "IN": "preliminary",
	"IP": "preliminary", "PA": "preliminary",
}

// v2 table 0273 (document availability status, TXA-19) → DocumentReference.status. The IG
// keeps CA, OB and UN in an alternate-codes extension on status; their closest status is set
// too, since status is required.
var docAvailability = map[string]string{"AV": "current", "CA": "entered-in-error", "OB": "superseded", "UN": "current"}

// mapDocument maps TXA and the content OBX to the DocumentReference.
func mapDocument(b *Builder, txa *hl7v2.Segment, content []*result, related []*Reference) {
	trigger := strings.ToUpper(b.Msg.Type().Trigger)
	d := &documentReference{ResourceType: "DocumentReference", Subject: b.Patient(), Category: []CodeableConcept{documentCategory}}
	key := documentKey(b, txa, d)
	d.Type = documentType(FieldValue(txa, 2))
	d.Status = "current"
	if avail := Code(FieldValue(txa, 19)); avail != "" {
		if s, ok := docAvailability[avail]; ok {
			d.Status = s
			if avail != "AV" {
				d.StatusElement = &Element{Extension: []Extension{{URL: extAlternateCodes, ValueCodeableConcept: &CodeableConcept{
					Coding: []Coding{{System: "http://terminology.hl7.org/CodeSystem/v2-0273", Code: avail}}}}}}
			}
		} else {
			b.Notef("TXA-19: availability status %q is not in table 0273; status current", avail)
		}
	}
	if trigger == "T11" {
		d.Status = "entered-in-error" // document cancel
	}
	if s := Code(FieldValue(txa, 17)); s != "" {
		if ds, ok := docStatuses[s]; ok {
			d.DocStatus = ds
		} else {
			b.Notef("TXA-17: completion status %q is not in table 0271; docStatus not set", s)
		}
	}
	if origin := FieldValue(txa, 6).Get(1); origin != "" {
		if t, ok := Instant(origin, b.Opts.Location); ok {
			d.Date = t
		} else {
			b.Notef("TXA-6: origination time %q has no time of day or offset; DocumentReference.date (an instant) not set", origin)
		}
	}
	for v := range Repetitions(txa, 9) {
		if r := b.XCN(v); r != nil {
			d.Author = append(d.Author, r)
		}
	}
	d.Authenticator = b.XCN(FieldValue(txa, 10))
	if code := documentRelation[trigger]; code != "" {
		if parent, ok := EI(FieldValue(txa, 13), b.Opts.ids()); ok {
			d.RelatesTo = []docRelatesTo{{Code: code, Target: Reference{Type: "DocumentReference", Identifier: &parent}}}
			if code == "replaces" {
				b.Notef("TXA-13: the replaced document %s is not marked superseded here (its owner holds it)", parent.Value)
			}
		}
	}
	d.Description = strings.TrimSpace(FieldValue(txa, 25).Get(1))
	if s := Code(FieldValue(txa, 18)); s != "" {
		d.SecurityLabel = []CodeableConcept{{Coding: []Coding{{System: "http://terminology.hl7.org/CodeSystem/v2-0272", Code: s}}}}
	}
	d.Content = documentContent(b, content)
	if b.Encounter() != nil || len(related) > 0 {
		d.Context = &docContext{Related: related}
		if e := b.Encounter(); e != nil {
			d.Context.Encounter = []*Reference{e}
		}
	}
	withContent := len(d.Content) > 0
	if !withContent {
		// R4 requires content: an attachment that says its data is unknown.
		d.Content = []docContent{{Attachment: docAttachment{Extension: Absent(), ContentType: presentationType(FieldValue(txa, 3))}}}
	}
	d.Meta = documentMeta(b, withContent)
	switch {
	case withContent || trigger == "T11":
		b.Update("DocumentReference", key, d)
	default:
		b.Notef("MDM^%s: notification without content; the DocumentReference is created if it does not exist, an existing one is left unchanged", trigger)
		b.Create("DocumentReference", key, d)
	}
}

// extAlternateCodes is the core extension for codes a coded element's value set cannot hold.
const extAlternateCodes = "http://hl7.org/fhir/StructureDefinition/alternate-codes"

// documentRelation is how a trigger's document relates to TXA-13 (parent document number):
// an addendum (T05, T06) appends to it, a replacement (T09, T10) replaces it.
var documentRelation = map[string]string{"T05": "appends", "T06": "appends", "T09": "replaces", "T10": "replaces"}

// documentKey sets the DocumentReference's identifiers and returns its conditional key:
// TXA-12 (unique document number, also masterIdentifier), else TXA-16 (unique file name), else
// SystemV2Document from the patient, TXA-2 and TXA-6 or, without TXA-6, the message's control
// id (MSH-10): such a document is told from the patient's others only within its message, so
// a resend converges but another message about it makes a second one (the note says so).
func documentKey(b *Builder, txa *hl7v2.Segment, d *documentReference) Identifier {
	var key Identifier
	if id, ok := EI(FieldValue(txa, 12), b.Opts.ids()); ok {
		master := id
		d.MasterIdentifier = &master
		d.Identifier = append(d.Identifier, id)
		key = keyOf(id)
	}
	if name := strings.TrimSpace(FieldValue(txa, 16).Get(1)); name != "" {
		file := Identifier{System: SystemV2DocumentFile, Value: name}
		d.Identifier = append(d.Identifier, file)
		if key.Value == "" {
			key = file
		}
	}
	if key.Value != "" {
		return key
	}
	pk := b.PatientKey()
	when := FieldValue(txa, 6).Get(1)
	if when == "" {
		when = "MSH-10:" + b.controlID
		b.Notef("TXA-12: no unique document number, file name or origination time; the document is keyed on this message (MSH-10), so another message about it makes another DocumentReference")
	} else {
		b.Notef("TXA-12: no unique document number; the document is keyed on the patient, TXA-2 and TXA-6")
	}
	key = Identifier{System: SystemV2Document, Value: pk.System + "|" + pk.Value + "|" + FieldValue(txa, 2).Get(1) + "|" + when}
	d.Identifier = append(d.Identifier, key)
	return key
}

// SystemV2DocumentFile is the system of TXA-16 (unique document file name), which v2 gives
// without an assigning authority.
const SystemV2DocumentFile = "https://interop.nhp.health/fhir/sid/v2-document-file"

// documentMeta claims us-core-documentreference only for a document with content: every
// other element the profile requires (type, category, subject) is always set.
func documentMeta(b *Builder, withContent bool) (m fhir.Meta) {
	m = b.Meta("DocumentReference")
	if withContent {
		m.Profile = append([]string{ProfileUSCoreDocumentReference}, m.Profile...)
	}
	return m
}

// presentationType is TXA-3 (document content presentation, table 0191) as a media type.
func presentationType(v Value) string {
	switch c := Code(v); c {
	case "TX", "FT", "TEXT":
		return "text/plain"
	case "":
		return ""
	default:
		return mediaType(c, "")
	}
}

// documentContent maps the OBX of the document (IG OBX[DocumentReference]): text values (TX,
// FT, ST; each repetition a line, each OBX a line) are joined into one text/plain
// attachment, placed where the first text OBX is; each ED repetition is an attachment with
// its media type; each RP is an attachment by URL. Other value types are not document content
// and are noted.
func documentContent(b *Builder, obxs []*result) []docContent {
	var (
		out   []docContent
		lines []string
		text  = -1
	)
	for _, r := range obxs {
		obx := r.obx
		switch typ := Code(FieldValue(obx, 2)); typ {
		case "TX", "FT", "ST":
			if text < 0 {
				text = len(out)
				out = append(out, docContent{})
			}
			for v := range Repetitions(obx, 5) {
				lines = append(lines, v.Get(1))
			}
		case "ED":
			n := 0
			for v := range Repetitions(obx, 5) {
				a, ok := ED(v)
				if !ok {
					b.Notef("OBX(%d)-5: ED without decodable data; not mapped", obx.Index())
					continue
				}
				if a.ContentType == "" {
					// R4 att-1: data needs a contentType; ED-2/ED-3 did not give one.
					a.ContentType = "application/octet-stream"
					b.Notef("OBX(%d)-5: ED type %q/%q is no media type; attached as application/octet-stream", obx.Index(), v.Get(2), v.Get(3))
				}
				out = append(out, docContent{Attachment: docAttachment{ContentType: a.ContentType, Data: a.Data}})
				n++
			}
			if n == 0 && FieldValue(obx, 5).IsEmpty() {
				b.Notef("OBX(%d)-5: ED without data; not mapped", obx.Index())
			}
		case "RP":
			for v := range Repetitions(obx, 5) {
				if u := v.Get(1); u != "" {
					out = append(out, docContent{Attachment: docAttachment{ContentType: mediaType(v.Get(3), v.Get(4)), URL: u}})
				}
			}
		default:
			b.Notef("OBX(%d): value type %q is not document content; not mapped", obx.Index(), typ)
		}
	}
	if text >= 0 {
		joined := strings.TrimRight(strings.Join(lines, "\n"), "\n")
		out[text].Attachment = docAttachment{ContentType: "text/plain", Data: base64.StdEncoding.EncodeToString([]byte(joined))}
	}
	return out
}
