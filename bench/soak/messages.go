package main

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"time"
)

// kind is what a generated message is, and so what the soak expects of it.
type kind string

const (
	kindA01 kind = "ADT^A01"
	kindA08 kind = "ADT^A08"
	kindORU kind = "ORU^R01"
	// kindPoison is acknowledged (its envelope is sound) but can never be mapped: the
	// pipeline must dead-letter it with its reason.
	kindPoison kind = "poison"
	// kindLongID and kindUTF8ID are sound messages with a hostile MSH-10 (1,000 characters;
	// non-ASCII UTF-8 without MSH-18): they must be processed like any other.
	kindLongID kind = "long MSH-10"
	kindUTF8ID kind = "UTF-8 MSH-10"
)

// expectDead reports whether a message of kind k must end dead-lettered.
func (k kind) expectDead() bool { return k == kindPoison }

// patient is one person of a sender's feed: admitted once, then updated and given results.
type patient struct {
	mrn, last, first, sex, dob, visit string
}

// feed generates one sender's messages: a hospital system admitting patients (ADT^A01),
// updating them (ADT^A08) and reporting their lab results (ORU^R01). Each sender has its own
// MSH-3 and its own patients, and numbers its MSH-10s from 1.
type feed struct {
	sender   int
	app      string
	rnd      *rand.Rand
	seq      int
	patients []patient
}

func newFeed(sender int) *feed {
	return &feed{
		sender: sender,
		app:    fmt.Sprintf("SOAK-S%d", sender),
		rnd:    rand.New(rand.NewPCG(uint64(sender), 14)), //nolint:gosec // G404: test data, not a secret
	}
}

var (
	lastNames  = []string{"GARCIA", "SMITH", "NGUYEN", "MÜLLER", "O'BRIEN", "KOWALSKI", "DUBOIS", "TANAKA", "OKAFOR", "SILVA"}
	firstNames = []string{"ANA", "JOHN", "MAI", "LUKAS", "SIOBHAN", "PIOTR", "CLAIRE", "HARUTO", "CHIDI", "JOÃO"}
	wards      = []string{"MED", "SURG", "CARD", "ONC", "PED"}
	streets    = []string{"MAIN ST", "OAK AVE", "ELM RD", "HARBOR WAY", "HILL ST"}
)

// panel is a lab panel of ORU^R01: LOINC code and name, and its results.
type panel struct {
	code, name string
	results    []result
}

type result struct {
	code, name, unit, ref string
	lo, hi                float64
}

var panels = []panel{
	{"24331-1", "Lipid panel", []result{
		{"2093-3", "Cholesterol [Mass/volume] in Serum or Plasma", "mg/dL", "<200", 140, 260},
		{"2571-8", "Triglyceride [Mass/volume] in Serum or Plasma", "mg/dL", "<150", 60, 240},
		{"2085-9", "HDL Cholesterol [Mass/volume] in Serum or Plasma", "mg/dL", ">40", 30, 80},
	}},
	{"24323-8", "Comprehensive metabolic panel", []result{
		{"2345-7", "Glucose [Mass/volume] in Serum or Plasma", "mg/dL", "70-99", 65, 180},
		{"2160-0", "Creatinine [Mass/volume] in Serum or Plasma", "mg/dL", "0.6-1.3", 0.5, 2.1},
		{"2951-2", "Sodium [Moles/volume] in Serum or Plasma", "mmol/L", "135-145", 128, 150},
		{"2823-3", "Potassium [Moles/volume] in Serum or Plasma", "mmol/L", "3.5-5.1", 3.0, 5.9},
	}},
	{"58410-2", "CBC panel", []result{
		{"6690-2", "Leukocytes [#/volume] in Blood", "10*3/uL", "4.5-11.0", 3, 15},
		{"718-7", "Hemoglobin [Mass/volume] in Blood", "g/dL", "12.0-17.5", 9, 18},
		{"777-3", "Platelets [#/volume] in Blood", "10*3/uL", "150-400", 90, 480},
	}},
}

// hl7Time is a timestamp as HL7 v2 writes it, with its offset.
func hl7Time(t time.Time) string { return t.Format("20060102150405-0700") }

// msh is the header of a message of this feed. MSH-10 is id.
func (f *feed) msh(now time.Time, typ, id string) string {
	return "MSH|^~\\&|" + f.app + "|SOAKHOSP|INTEROP|NHP|" + hl7Time(now) + "||" + typ + "|" + id + "|P|2.5.1"
}

func (f *feed) nextID() string {
	f.seq++
	return fmt.Sprintf("S%d-%07d", f.sender, f.seq)
}

func (f *feed) pid(p patient) string {
	return "PID|1||" + p.mrn + "^^^SOAKHOSP^MR||" + p.last + "^" + p.first + "||" + p.dob + "|" + p.sex +
		"|||" + fmt.Sprintf("%d %s", 10+f.rnd.IntN(990), streets[f.rnd.IntN(len(streets))]) + "^^SPRINGFIELD^IL^62701^USA||" +
		fmt.Sprintf("^PRN^PH^^1^217^%07d", f.rnd.IntN(10_000_000))
}

func (f *feed) pv1(p patient, now time.Time) string {
	ward := wards[f.rnd.IntN(len(wards))]
	doc := 100 + f.rnd.IntN(20)
	return fmt.Sprintf("PV1|1|I|%s^%d^%d^SOAKHOSP||||%d^HOUSE^GREGORY^^^DR^MD|||%s||||||||%s^^^SOAKHOSP^VN|||||||||||||||||||||||||%s",
		ward, 100+f.rnd.IntN(50), 1+f.rnd.IntN(2), doc, ward, p.visit, hl7Time(now))
}

func join(segs ...string) []byte { return []byte(strings.Join(segs, "\r") + "\r") }

// next returns the feed's next ordinary message: an admission while it has few patients,
// then a mix of admissions (30 %), updates (30 %) and results (40 %).
func (f *feed) next(now time.Time) (kind, string, []byte) {
	r := f.rnd.IntN(10)
	switch {
	case len(f.patients) < 5 || r < 3:
		return f.admit(now)
	case r < 6:
		return f.update(now)
	default:
		return f.results(now)
	}
}

func (f *feed) admit(now time.Time) (kind, string, []byte) {
	id := f.nextID()
	return kindA01, id, f.admission(now, id)
}

// admission admits a new patient with MSH-10 id.
func (f *feed) admission(now time.Time, id string) []byte {
	n := len(f.patients) + 1
	p := patient{
		mrn:   fmt.Sprintf("S%dMRN%06d", f.sender, n),
		last:  lastNames[f.rnd.IntN(len(lastNames))],
		first: firstNames[f.rnd.IntN(len(firstNames))],
		sex:   []string{"F", "M"}[f.rnd.IntN(2)],
		dob:   fmt.Sprintf("19%02d%02d%02d", 30+f.rnd.IntN(70), 1+f.rnd.IntN(12), 1+f.rnd.IntN(28)),
		visit: fmt.Sprintf("S%dV%06d", f.sender, n),
	}
	f.patients = append(f.patients, p)
	return join(
		f.msh(now, "ADT^A01^ADT_A01", id),
		"EVN|A01|"+hl7Time(now),
		f.pid(p),
		f.pv1(p, now),
	)
}

func (f *feed) update(now time.Time) (kind, string, []byte) {
	id := f.nextID()
	p := f.patients[f.rnd.IntN(len(f.patients))]
	return kindA08, id, join(
		f.msh(now, "ADT^A08^ADT_A01", id),
		"EVN|A08|"+hl7Time(now),
		f.pid(p), // a new address and phone number
		f.pv1(p, now),
	)
}

func (f *feed) results(now time.Time) (kind, string, []byte) {
	id := f.nextID()
	p := f.patients[f.rnd.IntN(len(f.patients))]
	pn := panels[f.rnd.IntN(len(panels))]
	segs := []string{
		f.msh(now, "ORU^R01^ORU_R01", id),
		f.pid(p),
		"PV1|1|I|||||||||||||||||" + p.visit + "^^^SOAKHOSP^VN",
		fmt.Sprintf("OBR|1|%s-P^SOAKEHR|%s-F^SOAKLIS|%s^%s^LN|||%s|||||||||100^HOUSE^GREGORY^^^DR^MD||||||%s|||F",
			id, id, pn.code, pn.name, hl7Time(now.Add(-time.Hour)), hl7Time(now)),
	}
	for i, r := range pn.results {
		v := r.lo + f.rnd.Float64()*(r.hi-r.lo)
		segs = append(segs, fmt.Sprintf("OBX|%d|NM|%s^%s^LN||%.1f|%s|%s|N|||F|||%s",
			i+1, r.code, r.name, v, r.unit, r.ref, hl7Time(now.Add(-time.Hour))))
	}
	return kindORU, id, join(segs...)
}

// poison is the n-th poison of the run, a message the service must acknowledge and then
// dead-letter: its envelope is sound, its content cannot be mapped. It alternates an ADT^A01
// without a PID segment and an ORU^R01 whose PID-3 holds no identifier.
func (f *feed) poison(now time.Time, n int) (kind, string, []byte) {
	id := fmt.Sprintf("S%d-POISON-%04d", f.sender, n)
	if n%2 == 0 {
		return kindPoison, id, join(
			f.msh(now, "ADT^A01^ADT_A01", id),
			"EVN|A01|"+hl7Time(now),
			"PV1|1|I|MED^101^1^SOAKHOSP",
		)
	}
	return kindPoison, id, join(
		f.msh(now, "ORU^R01^ORU_R01", id),
		"PID|1||||NOBODY^NONAME",
		"OBR|1||"+id+"-F^SOAKLIS|2345-7^Glucose^LN|||"+hl7Time(now),
		"OBX|1|NM|2345-7^Glucose^LN||99|mg/dL|70-99|N|||F",
	)
}

// hostile is a sound admission with a hostile MSH-10: n-th of them alternates 1,000
// characters and non-ASCII UTF-8 (MSH-18 empty, as many senders leave it).
func (f *feed) hostile(now time.Time, n int) (kind, string, []byte) {
	k, id := kindLongID, fmt.Sprintf("S%d-LONG-%04d-", f.sender, n)
	if n%2 == 0 {
		id += strings.Repeat("X", 1000-len(id))
	} else {
		k, id = kindUTF8ID, fmt.Sprintf("S%d-ÉTÉ-Ω-名前-%04d", f.sender, n)
	}
	return k, id, f.admission(now, id)
}
