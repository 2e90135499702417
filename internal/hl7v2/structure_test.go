package hl7v2

import "testing"

func TestStructureFor(t *testing.T) {
	tests := []struct {
		code, trigger, version, want string
	}{
		{"ADT", "A01", "2.5.1", "ADT_A01"},
		{"ADT", "A04", "2.5.1", "ADT_A01"},
		{"ADT", "A08", "2.3", "ADT_A01"},
		{"ADT", "A13", "2.8", "ADT_A01"},
		{"ADT", "A02", "2.5.1", "ADT_A02"},
		{"ADT", "A03", "2.5.1", "ADT_A03"},
		{"ADT", "A05", "2.5.1", "ADT_A05"},
		{"ADT", "A14", "2.5.1", "ADT_A05"},
		{"ADT", "A28", "2.5.1", "ADT_A05"},
		{"ADT", "A31", "2.4", "ADT_A05"},
		{"ADT", "A06", "2.5.1", "ADT_A06"},
		{"ADT", "A07", "2.5.1", "ADT_A06"},
		{"ADT", "A09", "2.5.1", "ADT_A09"},
		{"ADT", "A10", "2.5.1", "ADT_A09"},
		{"ADT", "A11", "2.5.1", "ADT_A09"},
		{"ADT", "A12", "2.3.1", "ADT_A09"},
		{"ADT", "A12", "2.4", "ADT_A09"},
		{"ADT", "A12", "2.5", "ADT_A12"},
		{"ADT", "A12", "2.8", "ADT_A12"},
		{"ADT", "A12", "", "ADT_A12"},
		{"ADT", "A17", "2.5.1", "ADT_A17"},
		{"ADT", "A39", "2.5.1", "ADT_A39"},
		{"ADT", "A40", "2.3.1", "ADT_A39"},
		{"ADT", "A40", "2.8", "ADT_A39"},
		{"ADT", "A41", "2.5.1", "ADT_A39"},
		{"ADT", "A42", "2.5.1", "ADT_A39"},
		{"ADT", "A44", "2.6", "ADT_A43"},
		{"ADT", "A44", "2.7", "ADT_A44"},
		{"ADT", "A47", "2.5.1", "ADT_A30"},
		{"ADT", "A47", "2.8", "ADT_A44"},
		{"ADT", "A49", "2.6", "ADT_A30"},
		{"ADT", "A49", "2.7", "ADT_A43"},
		{"ADT", "A55", "2.5.1", "ADT_A52"},
		{"ADT", "A55", "2.6", "ADT_A54"},
		{"ADT", "A29", "2.5.1", "ADT_A21"},
		{"ADT", "A24", "2.5.1", "ADT_A24"},
		{"ORU", "R01", "2.5.1", "ORU_R01"},
		{"ORU", "R40", "2.8", "ORU_R01"},
		{"ORM", "O01", "2.3", "ORM_O01"},
		{"OML", "O21", "2.5.1", "OML_O21"},
		{"VXU", "V04", "2.5.1", "VXU_V04"},
		{"SIU", "S12", "2.5.1", "SIU_S12"},
		{"SIU", "S14", "2.5.1", "SIU_S12"},
		{"MDM", "T01", "2.5.1", "MDM_T01"},
		{"MDM", "T02", "2.5.1", "MDM_T02"},
		{"MDM", "T04", "2.5.1", "MDM_T02"},
		{"MDM", "T11", "2.5.1", "MDM_T01"},
		{"ACK", "A01", "2.5.1", "ACK"},
		{"ACK", "", "2.3", "ACK"},
		{"adt", " a04", "2.5", "ADT_A01"},
		{"ADT", "A99", "2.5", ""},
		{"ZZZ", "Z01", "2.5", ""},
		{"", "", "", ""},
	}
	for _, tt := range tests {
		if got := StructureFor(tt.code, tt.trigger, tt.version); got != tt.want {
			t.Errorf("StructureFor(%q, %q, %q) = %q, want %q", tt.code, tt.trigger, tt.version, got, tt.want)
		}
	}
}

func TestMessageStructure(t *testing.T) {
	tests := []struct{ msh9, version, want string }{
		{"ADT^A04^ADT_A01", "2.5", "ADT_A01"},
		{"ADT^A04", "2.5", "ADT_A01"},
		{"ADT^A04^ADT_A04", "2.5", "ADT_A04"}, // as written; Groups falls back to the table
		{"ADT^A12", "2.4", "ADT_A09"},
		{"ADT^A12", "2.5.1", "ADT_A12"},
		{"ZZZ^Z01", "2.5", ""},
		{"", "2.5", ""},
	}
	for _, tt := range tests {
		m := mustParse(t, "MSH|^~\\&|A|B|C|D|20240101||"+tt.msh9+"|1|P|"+tt.version)
		if got := m.Structure(); got != tt.want {
			t.Errorf("MSH-9 %q v%s: Structure = %q, want %q", tt.msh9, tt.version, got, tt.want)
		}
	}
	if got := (&Message{}).Structure(); got != "" {
		t.Errorf("zero Message: Structure = %q", got)
	}
}
