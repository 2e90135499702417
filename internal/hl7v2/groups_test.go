package hl7v2

import (
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// shape is a Group reduced to names and segment locations, for cmp.Diff.
type shape struct {
	Name string
	Segs string // the group's own segments, e.g. "OBX(2) NTE"
	Kids []shape
}

func shapeOf(g *Group) shape {
	var segs []string
	for _, s := range g.Segments {
		segs = append(segs, s.Location().String())
	}
	out := shape{Name: g.Name, Segs: strings.Join(segs, " ")}
	for _, c := range g.Children {
		out.Kids = append(out.Kids, shapeOf(c))
	}
	return out
}

func grp(name, segs string, kids ...shape) shape { return shape{name, segs, kids} }

func TestGroupsReferenceMessages(t *testing.T) {
	tests := []struct {
		file  string
		want  shape
		probs []probSummary
	}{
		{"raster-oru-r01.hl7", grp("ORU_R01", "MSH",
			grp("PATIENT_RESULT", "",
				grp("PATIENT", "PID", grp("VISIT", "PV1")),
				grp("ORDER_OBSERVATION", "OBR", grp("OBSERVATION", "OBX")),
				grp("ORDER_OBSERVATION", "OBR(2)", grp("OBSERVATION", "OBX(2) NTE")),
				grp("ORDER_OBSERVATION", "OBR(3)", grp("OBSERVATION", "OBX(3)")))), nil},
		{"cdc-covid19-elr.hl7", grp("ORU_R01", "MSH",
			grp("PATIENT_RESULT", "",
				grp("PATIENT", "PID"),
				grp("ORDER_OBSERVATION", "OBR",
					grp("OBSERVATION", "OBX"), grp("OBSERVATION", "OBX(2)"), grp("OBSERVATION", "OBX(3)"),
					grp("OBSERVATION", "OBX(4)"), grp("OBSERVATION", "OBX(5) NTE"), grp("SPECIMEN", "SPM")),
				grp("ORDER_OBSERVATION", "OBR(2)",
					grp("OBSERVATION", "OBX(6)"), grp("OBSERVATION", "OBX(7)"), grp("OBSERVATION", "OBX(8) NTE(2)"),
					grp("SPECIMEN", "SPM(2)")),
				grp("ORDER_OBSERVATION", "OBR(3)",
					grp("OBSERVATION", "OBX(9)"), grp("OBSERVATION", "OBX(10)"), grp("OBSERVATION", "OBX(11)"),
					grp("OBSERVATION", "OBX(12) NTE(3)"), grp("SPECIMEN", "SPM(3)")))), nil},
		// v2.9 layout: PRT everywhere, ORDER_DOCUMENT after ORC, specimen OBX.
		{"msft-oru-r01.hl7", grp("ORU_R01", "MSH SFT",
			grp("PATIENT_RESULT", "",
				grp("PATIENT", "PID PRT", grp("PATIENT_OBSERVATION", "OBX PRT(2)"), grp("VISIT", "PV1 PRT(3)")),
				grp("ORDER_OBSERVATION", "ORC PRT(4) OBR NTE NTE(2) PRT(6) CTD FT1 CTI",
					grp("ORDER_DOCUMENT", "OBX(2) PRT(5) TXA"),
					grp("TIMING_QTY", "TQ1"),
					grp("OBSERVATION", "OBX(3) PRT(7) NTE(3) NTE(4)"),
					grp("SPECIMEN", "SPM OBX(4) OBX(5) PRT(8)")))), nil},
		{"hamaluik-oru-r01-zps.hl7", grp("ORU_R01", "MSH",
			grp("PATIENT_RESULT", "",
				grp("PATIENT", "PID", grp("VISIT", "PV1")),
				grp("ORDER_OBSERVATION", "ORC OBR",
					grp("OBSERVATION", "OBX"), grp("OBSERVATION", "OBX(2)"), grp("OBSERVATION", "OBX(3)"),
					grp("OBSERVATION", "OBX(4)"), grp("OBSERVATION", "OBX(5)"), grp("OBSERVATION", "OBX(6)"),
					grp("OBSERVATION", "OBX(7)"), grp("OBSERVATION", "OBX(8)"), grp("OBSERVATION", "OBX(9)"),
					grp("OBSERVATION", "OBX(10)"), grp("OBSERVATION", "OBX(11)"), grp("OBSERVATION", "OBX(12)"),
					grp("OBSERVATION", "OBX(13)"), grp("OBSERVATION", "OBX(14) ZDR ZPR")))),
			[]probSummary{{SeverityInfo, ProblemUnexpectedSegment, "ZDR"}, {SeverityInfo, ProblemUnexpectedSegment, "ZPR"}}},
		{"lfh-vxu-v04-two-orders.hl7", grp("VXU_V04", "MSH PID",
			grp("PATIENT_VISIT", "PV1"),
			grp("ORDER", "ORC RXA", grp("OBSERVATION", "OBX"), grp("OBSERVATION", "OBX(2)")),
			grp("ORDER", "ORC(2) RXA(2) RXR", grp("OBSERVATION", "OBX(3)"), grp("OBSERVATION", "OBX(4)"))), nil},
		{"msft-vxu-v04-bom.hl7", grp("VXU_V04", "MSH SFT PID PD1 NK1 GT1",
			grp("PATIENT_VISIT", "PV1 PV2"),
			grp("INSURANCE", "IN1 IN2"),
			grp("PERSON_OBSERVATION", "OBX PRT NTE"),
			grp("ORDER", "ORC PRT(2) RXA RXR",
				grp("TIMING", "TQ1"),
				grp("OBSERVATION", "OBX(2)"), grp("OBSERVATION", "OBX(3)"), grp("OBSERVATION", "OBX(4)"),
				grp("OBSERVATION", "OBX(5) PRT(3)"))), nil},
		// ADT^A04 without MSH-9.3: the table gives ADT_A01.
		{"hamaluik-adt-a04.hl7", grp("ADT_A01", "MSH EVN PID NK1 NK1(2) PV1 AL1 AL1(2) DG1 GT1",
			grp("PROCEDURE", "PR1 ROL"),
			grp("INSURANCE", "IN1 IN2 ROL(2)")), nil},
		{"msft-adt-a01-full.hl7", grp("ADT_A01", "MSH SFT EVN PID PD1 ARV ROL NK1 PV1 PV2 ARV(2) ROL(2) DB1 OBX AL1 DG1 GT1 ACC PDA",
			grp("PROCEDURE", "PR1 ROL(3)"),
			grp("INSURANCE", "IN1 IN2", grp("REFERRAL", "RF1"))), nil},
		{"rethink-adt-a01-full.hl7", grp("ADT_A01", "MSH EVN PID PD1 NK1 PV1 PV2 DG1", grp("INSURANCE", "IN1")), nil},
		// MSH-9.3 ADT_A40 (pre-2.3.1 naming) is grouped as ADT_A39.
		{"msft-adt-a40.hl7", grp("ADT_A39", "MSH EVN",
			grp("PATIENT", "PID MRG"),
			grp("PATIENT", "PID(2) MRG(2)")),
			[]probSummary{{SeverityInfo, ProblemStructureFromEvent, "MSH-9.3"}}},
		{"lfh-adt-a40.hl7", grp("ADT_A39", "MSH EVN", grp("PATIENT", "PID MRG")), nil},
		{"rethink-mdm-t02.hl7", grp("MDM_T02", "MSH EVN PID PV1 TXA", grp("OBSERVATION", "OBX")), nil},
		// No RGS: the AIG still opens RESOURCES, and the gap is reported.
		{"rethink-siu-s12.hl7", grp("SIU_S12", "MSH SCH",
			grp("PATIENT", "PID PV1"),
			grp("RESOURCES", "", grp("GENERAL_RESOURCE", "AIG"))),
			[]probSummary{{SeverityWarning, ProblemMissingSegment, "AIG"}}},
		{"rethink-z-segments.hl7", grp("ADT_A01", "MSH PID ZVN ZPD"),
			[]probSummary{
				{SeverityInfo, ProblemUnexpectedSegment, "ZVN"}, {SeverityInfo, ProblemUnexpectedSegment, "ZPD"},
				{SeverityWarning, ProblemMissingSegment, "MSH"}, {SeverityWarning, ProblemMissingSegment, "MSH"},
			}},
		{"raster-ack.hl7", grp("ACK", "MSH MSA"), []probSummary{{SeverityInfo, ProblemNoGrammar, "MSH-9"}}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			m, err := Parse(readFixture(t, "messages/"+tt.file))
			if err != nil {
				t.Fatal(err)
			}
			g, probs := m.Groups()
			if diff := cmp.Diff(tt.want, shapeOf(g)); diff != "" {
				t.Errorf("groups (-want +got):\n%s\ngot tree:\n%s", diff, g)
			}
			if diff := cmp.Diff(tt.probs, summarize(probs)); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
		})
	}
}

// TestGroupsLenient covers input that does not follow the structure.
func TestGroupsLenient(t *testing.T) {
	const msh = "MSH|^~\\&|A|B|C|D|20240101||"
	tests := []struct {
		name  string
		in    string
		want  shape
		probs []probSummary
	}{
		{"order without ORC", msh + "ORM^O01|1|P|2.5\rPID|1\rORC|NW\rOBR|1\rOBR|2\rNTE|1",
			grp("ORM_O01", "MSH",
				grp("PATIENT", "PID"),
				grp("ORDER", "ORC", grp("ORDER_DETAIL", "OBR")),
				grp("ORDER", "", grp("ORDER_DETAIL", "OBR(2) NTE"))),
			[]probSummary{{SeverityWarning, ProblemMissingSegment, "OBR(2)"}}},
		// (Right after PID, an OBX is a v2.7+ PATIENT_OBSERVATION.)
		{"observation without OBR", msh + "ORU^R01|1|P|2.5\rPID|1\rPV1|1\rOBX|1\rOBX|2",
			grp("ORU_R01", "MSH",
				grp("PATIENT_RESULT", "",
					grp("PATIENT", "PID", grp("VISIT", "PV1")),
					grp("ORDER_OBSERVATION", "", grp("OBSERVATION", "OBX"), grp("OBSERVATION", "OBX(2)")))),
			[]probSummary{{SeverityWarning, ProblemMissingSegment, "OBX"}}},
		// An optional segment out of order is kept where it appears; it
		// does not start a second patient.
		{"segment out of order", msh + "ORU^R01|1|P|2.5\rPID|1\rPV1|1\rNK1|1\rOBR|1\rOBX|1",
			grp("ORU_R01", "MSH",
				grp("PATIENT_RESULT", "",
					grp("PATIENT", "PID", grp("VISIT", "PV1 NK1")),
					grp("ORDER_OBSERVATION", "OBR", grp("OBSERVATION", "OBX")))),
			[]probSummary{{SeverityWarning, ProblemUnexpectedSegment, "NK1"}}},
		{"second patient result", msh + "ORU^R01|1|P|2.5\rPID|1\rOBR|1\rOBX|1\rPID|2\rOBR|2",
			grp("ORU_R01", "MSH",
				grp("PATIENT_RESULT", "",
					grp("PATIENT", "PID"),
					grp("ORDER_OBSERVATION", "OBR", grp("OBSERVATION", "OBX"))),
				grp("PATIENT_RESULT", "",
					grp("PATIENT", "PID(2)"),
					grp("ORDER_OBSERVATION", "OBR(2)"))), nil},
		{"missing required root segments", msh + "ADT^A01|1|P|2.5\rPID|1",
			grp("ADT_A01", "MSH PID"),
			[]probSummary{{SeverityWarning, ProblemMissingSegment, "MSH"}, {SeverityWarning, ProblemMissingSegment, "MSH"}}},
		{"unknown structure", msh + "ZZZ^Z01|1|P|2.5\rPID|1", grp("", "MSH PID"),
			[]probSummary{{SeverityInfo, ProblemNoGrammar, "MSH-9"}}},
		{"Z-segment inside a group", msh + "VXU^V04|1|P|2.5.1\rPID|1\rORC|RE\rRXA|0\rZXA|1\rOBX|1",
			grp("VXU_V04", "MSH PID", grp("ORDER", "ORC RXA ZXA", grp("OBSERVATION", "OBX"))),
			[]probSummary{{SeverityInfo, ProblemUnexpectedSegment, "ZXA"}}},
		{"choice taken once", msh + "ORM^O01|1|P|2.3\rORC|NW\rRXO|1\rNTE|1",
			grp("ORM_O01", "MSH", grp("ORDER", "ORC", grp("ORDER_DETAIL", "RXO NTE"))), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, probs := mustParse(t, tt.in).Groups()
			if diff := cmp.Diff(tt.want, shapeOf(g)); diff != "" {
				t.Errorf("groups (-want +got):\n%s\ngot tree:\n%s", diff, g)
			}
			if diff := cmp.Diff(tt.probs, summarize(probs)); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
		})
	}
}

// TestGroupsKeepEverySegment checks, over the samples and the reference
// corpus when present, that every segment is in the tree exactly once.
func TestGroupsKeepEverySegment(t *testing.T) {
	files, _ := filepath.Glob("testdata/messages/*.hl7")
	dir := filepath.Join("..", "..", "..", "shared", "reference")
	_ = filepath.WalkDir(dir, func(path string, de fs.DirEntry, err error) error {
		if err == nil && !de.IsDir() && (strings.HasSuffix(path, ".hl7") || strings.HasSuffix(path, ".txt")) {
			files = append(files, path)
		}
		return nil
	})
	grouped := 0
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		m, err := Parse(data)
		if err != nil {
			continue
		}
		g, probs := m.Groups()
		if err := checkGroupTree(m, g); err != "" {
			t.Errorf("%s: %s", f, err)
		}
		if len(probs) == 0 || probs[0].Code != ProblemNoGrammar {
			grouped++
		}
	}
	t.Logf("%d messages, %d with a grammar", len(files), grouped)
}

// checkGroupTree reports how the tree differs from "every segment of m
// exactly once", or "".
func checkGroupTree(m *Message, g *Group) string {
	count := map[*Segment]int{}
	var walk func(*Group)
	walk = func(g *Group) {
		for _, s := range g.Segments {
			count[s]++
		}
		for _, c := range g.Children {
			walk(c)
		}
	}
	walk(g)
	for _, s := range m.segs {
		if count[s] != 1 {
			return s.Location().String() + " appears " + strconv.Itoa(count[s]) + " times"
		}
	}
	if len(count) != len(m.segs) {
		return "tree has segments the message lacks"
	}
	return ""
}

func TestGroupHelpers(t *testing.T) {
	m, err := Parse(readFixture(t, "messages/cdc-covid19-elr.hl7"))
	if err != nil {
		t.Fatal(err)
	}
	root, _ := m.Groups()
	orders := root.All("ORDER_OBSERVATION")
	if len(orders) != 3 {
		t.Fatalf("%d ORDER_OBSERVATION, want 3", len(orders))
	}
	if got := orders[1].Segment("OBR").Location().String(); got != "OBR(2)" {
		t.Errorf("second order's OBR = %s", got)
	}
	if got := len(root.All("OBSERVATION")); got != 12 {
		t.Errorf("%d OBSERVATION in all orders, want 12", got)
	}
	if got := len(orders[0].All("OBSERVATION")); got != 5 {
		t.Errorf("%d OBSERVATION in the first order, want 5", got)
	}
	obs := orders[0].All("OBSERVATION")[4]
	if got := len(obs.SegmentsNamed("NTE")); got != 1 {
		t.Errorf("%d NTE in OBX(5)'s group, want 1", got)
	}
	if got := root.First("PATIENT").Segment("PID").Location().String(); got != "PID" {
		t.Errorf("First(PATIENT).Segment(PID) = %s", got)
	}
	if root.Segment("PID") != nil {
		t.Error("Segment looked into child groups")
	}
	// Missing groups chain to nil instead of panicking.
	none := root.First("VISIT")
	if none != nil || none.Segment("PV1") != nil || none.First("X") != nil || none.All("X") != nil || none.SegmentsNamed("X") != nil {
		t.Error("nil group helpers returned something")
	}
	if !strings.HasPrefix(root.String(), "ORU_R01: MSH\n  PATIENT_RESULT\n    PATIENT: PID\n    ORDER_OBSERVATION: OBR\n") {
		t.Errorf("String =\n%s", root)
	}
	// Appending to one group's slice must not overwrite its neighbour's.
	first, second := orders[0].All("OBSERVATION")[0], orders[0].All("OBSERVATION")[1]
	before := second.Segments[0]
	first.Segments = append(first.Segments, before)
	if second.Segments[0] != before {
		t.Error("append to a group's Segments clobbered the next group")
	}
}

func TestGrammarSyntax(t *testing.T) {
	for name, n := range grammars {
		if n.name != name || len(n.kids) == 0 || n.kids[0].name != "MSH" || n.kids[0].optional {
			t.Errorf("grammar %s does not start with a required MSH", name)
		}
	}
	g := mustGrammar("T", "MSH [{ A01( PID [PD1] ) }] <OBR|RXO> [( ORC [NTE] )]")
	if k := g.kids[1]; !k.group || !k.optional || !k.repeat || k.name != "A01" || len(k.kids) != 2 {
		t.Errorf("group parsed as %+v", k)
	}
	if k := g.kids[2]; k.group || k.name != "OBR|RXO" || !k.accepts("RXO") || k.optional {
		t.Errorf("choice parsed as %+v", k)
	}
	if k := g.kids[3]; !k.group || k.name != "" || !k.optional {
		t.Errorf("unnamed group parsed as %+v", k)
	}
	if diff := cmp.Diff([]string{"MSH"}, g.first); diff != "" {
		t.Errorf("first set: %s", diff)
	}
	if diff := cmp.Diff([]string{"MSH", "PID", "OBR", "RXO", "ORC"}, g.anchors); diff != "" {
		t.Errorf("anchors: %s", diff)
	}
	for _, bad := range []string{"MSH [PID", "MSH {PID]", "MSH PIDX", "MSH G( )", "MSH <OBR|>", "MSH )", "MSH [{}]", "MSH G(PID"} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("grammar %q did not panic", bad)
				}
			}()
			mustGrammar("T", bad)
		}()
	}
}
