package mapping_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/nhp/interop/internal/hl7v2"
	"github.com/nhp/interop/internal/mapping"
)

// TestUnmappedTypesWriteNothing: a message type without a mapping carries a PID that is a
// query's subject or a guarantor's account, not an update of the patient: the Bundle must be
// empty (no Patient, no MessageHeader), Unmapped set, and a note must say why.
func TestUnmappedTypesWriteNothing(t *testing.T) {
	pid := "PID|1||PATID1234^^^HOSP^MR||EVERYMAN^ADAM||19610615|M\r"
	for _, tc := range []struct{ name, msg string }{
		{"DFT^P03", "MSH|^~\\&|FIN|HOSP|||20240101120000||DFT^P03^DFT_P03|D1|P|2.5.1\rEVN|P03|20240101120000\r" + pid +
			"FT1|1|||20240101|20240101|CG|71045^Xray chest^C4\r"},
		{"QRY^A19", "MSH|^~\\&|EHR|HOSP|||20240101120000||QRY^A19|Q1|P|2.3\rQRD|20240101120000|R|I|Q1|||1^RD|PATID1234|DEM\r"},
		{"BAR^P01", "MSH|^~\\&|FIN|HOSP|||20240101120000||BAR^P01^BAR_P01|B1|P|2.5.1\rEVN|P01|20240101120000\r" + pid +
			"PV1|1|I|W^1^1\r"},
		{"RSP^K22", "MSH|^~\\&|MPI|HOSP|||20240101120000||RSP^K22^RSP_K21|R1|P|2.5.1\rMSA|AA|Q1\rQAK|Q1|OK\rQPD|Q22^Find^HL70471|Q1\r" + pid},
		{"ACK", "MSH|^~\\&|LAB|HOSP|||20240101120000||ACK^R01^ACK|A1|P|2.5.1\rMSA|AA|MSG1\r"},
		{"MFN^M02", "MSH|^~\\&|MFS|HOSP|||20240101120000||MFN^M02^MFN_M02|M1|P|2.5.1\rMFI|PRA^Practitioner^HL70175||UPD|||AL\r"},
		{"unknown structure", "MSH|^~\\&|X|HOSP|||20240101120000||ZZZ^Z99|Z1|P|2.5.1\r" + pid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := hl7v2.Parse([]byte(tc.msg))
			require.NoError(t, err)
			for _, mp := range []*mapping.Mapper{mapping.New(mapping.Options{}), mapping.New(mapping.Options{MessageResources: true})} {
				r, err := mp.Map(m)
				require.NoError(t, err)
				require.True(t, r.Unmapped)
				require.NotNil(t, r.Bundle)
				require.Empty(t, r.Bundle.Entry, "an unmapped message must write nothing")
				require.Len(t, r.Notes, 1)
				require.Contains(t, r.Notes[0], "MSH-9: no mapping for")
				require.Contains(t, r.Notes[0], "nothing was written")
			}
		})
	}
}

// TestMappedTypesAreNotUnmapped guards the other side: every family this package maps keeps
// writing its resources.
func TestMappedTypesAreNotUnmapped(t *testing.T) {
	for _, typ := range []string{"ADT^A01^ADT_A01", "ORU^R01^ORU_R01", "ORM^O01^ORM_O01", "VXU^V04^VXU_V04", "ADT^A04"} {
		m, err := hl7v2.Parse([]byte("MSH|^~\\&|X|HOSP|||20240101120000||" + typ + "|C1|P|2.5.1\rPID|1||P1^^^HOSP^MR||DOE^JANE\r"))
		require.NoError(t, err)
		r, err := mapping.New(mapping.Options{}).Map(m)
		require.NoError(t, err, typ)
		require.False(t, r.Unmapped, typ)
		require.NotEmpty(t, r.Bundle.Entry, typ)
	}
}
