package export

import (
	"errors"
	"net/url"
	"testing"
	"time"
)

// FuzzParseKickoff feeds arbitrary query strings and Parameters bodies to the kick-off parser:
// it must never panic, and every refusal must be a *ParamError (a 400 OperationOutcome, never
// a 500).
func FuzzParseKickoff(f *testing.F) {
	f.Add("_type=Patient,Observation&_since=2024-01-01T00:00:00Z", []byte(nil), false)
	f.Add("_typeFilter=Observation%3Fcategory%3Dlaboratory%2CObservation%3Fstatus%3Dfinal&_type=Observation", []byte(nil), true)
	f.Add("", []byte(`{"resourceType":"Parameters","parameter":[{"name":"patient","valueReference":{"reference":"Patient/1"}},{"name":"_type","valueString":"Patient"}]}`), false)
	f.Add("", []byte(`{"resourceType":"Parameters","parameter":[{"name":"_since","valueInstant":"2024-01-01T00:00:00+01:00"},{"name":"_outputFormat","valueString":"ndjson"}]}`), true)
	f.Add("_elements=id&includeAssociatedData=x&_outputFormat=text%2Fcsv", []byte(nil), true)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	known := func(s string) bool { return s == "Patient" || s == "Observation" || s == "Group" }
	f.Fuzz(func(t *testing.T, query string, body []byte, lenient bool) {
		q, err := url.ParseQuery(query)
		if err != nil {
			return
		}
		for _, method := range []string{"GET", "POST"} {
			for _, level := range []Level{LevelSystem, LevelPatient, LevelGroup} {
				in := KickoffInput{Method: method, Level: level, Query: q, Lenient: lenient, KnownType: known, Now: now}
				if level == LevelGroup {
					in.GroupID = "g1"
				}
				if method == "POST" {
					in.Body = body
					if len(body) > 0 {
						in.Query = url.Values{}
					}
				}
				req, err := ParseKickoff(in)
				var pe *ParamError
				if err != nil && !errors.As(err, &pe) {
					t.Fatalf("%s %v: error %T (%v) is not a ParamError", method, level, err, err)
				}
				if err == nil && req.OutputFormat != OutputFormatNDJSON {
					t.Fatalf("accepted request with output format %q", req.OutputFormat)
				}
			}
		}
	})
}
