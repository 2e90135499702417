package hl7v2

import (
	"fmt"
	"strconv"
	"strings"
)

// checkEnvelope runs the checks that need the whole input: which
// delimiters the envelope uses, messages that declare others, and the
// envelope fields against the HL7 version the messages declare.
func (s *batchSplitter) checkEnvelope() {
	f := s.f
	version := ""
	var firstMSH *Delimiters
	for i, md := range s.msgEnv {
		if !md.ok {
			continue // Parse reports it for that message
		}
		if firstMSH == nil {
			firstMSH = &md.own
			if h, err := ReadHeader(f.Messages[i].Data); err == nil {
				version = h.Version
			}
		}
		if md.env != nil && !sameEnvelopeDelimiters(*md.env, md.own) {
			// Once: a sender that differs usually differs everywhere.
			s.add(Problem{Severity: SeverityWarning, Location: Location{Segment: "MSH", SegmentIndex: i + 1, Field: 2}, Offset: f.Messages[i].Offset,
				Code: ProblemBatchDelimiters, Message: fmt.Sprintf("message %d declares delimiters %s, its envelope %s; each message is read with its own",
					i+1, envelopeDelimText(md.own), envelopeDelimText(*md.env))})
			break
		}
	}
	switch {
	case s.firstFHS != nil:
		f.Delimiters = *s.firstFHS
	case s.firstBHS != nil:
		f.Delimiters = *s.firstBHS
	case firstMSH != nil:
		f.Delimiters = *firstMSH
	default:
		f.Delimiters = DefaultDelimiters
	}
	for _, e := range s.envSegs {
		s.checkFields(e, version)
	}
}

// sameEnvelopeDelimiters compares delimiters, ignoring a truncation character only
// one side declares (v2.7 added it; older envelopes simply lack it).
func sameEnvelopeDelimiters(a, b Delimiters) bool {
	if a.Truncation == 0 || b.Truncation == 0 {
		a.Truncation, b.Truncation = 0, 0
	}
	return a == b
}

// envelopeMaxFields returns the number of fields an envelope segment has in the
// given HL7 version. FHS and BHS have 12 fields up to v2.6; later versions
// add network addresses and security labels (17 fields in v2.9), so from
// v2.7 on, and when the version is unknown, the v2.9 count is used, which
// never flags a field that some version defines.
func envelopeMaxFields(name, version string) int {
	switch name {
	case "BTS":
		return 3
	case "FTS":
		return 2
	}
	major, minor, ok := envelopeVersion(version)
	if ok && (major < 2 || major == 2 && minor < 7) {
		return 12
	}
	return 17
}

// envelopeVersion reads "2.5.1" as (2, 5).
func envelopeVersion(v string) (major, minor int, ok bool) {
	a, b, found := strings.Cut(v, ".")
	if !found {
		return 0, 0, false
	}
	b, _, _ = strings.Cut(b, ".")
	major, err1 := strconv.Atoi(a)
	minor, err2 := strconv.Atoi(b)
	return major, minor, err1 == nil && err2 == nil
}

// checkFields checks one envelope segment's shape: no fields beyond those
// defined, and for FHS and BHS, single values with at most three
// components in the HD fields 3 to 6 and no repetitions in fields 3 to 12,
// none of which repeat in any HL7 version.
func (s *batchSplitter) checkFields(e envSegment, version string) {
	seg := e.seg
	name := seg.Name()
	loc := seg.Location()
	if limit := envelopeMaxFields(name, version); seg.NumFields() > limit {
		l := loc
		l.Field = limit + 1
		s.add(Problem{Severity: SeverityWarning, Location: l, Offset: e.off, Code: ProblemBatchExtraField,
			Message: fmt.Sprintf("%s has %d fields; HL7 %s defines %d", name, seg.NumFields(), envelopeVersionText(version), limit)})
	}
	if !seg.header {
		return
	}
	for n := 3; n <= min(12, seg.NumFields()); n++ {
		fl := seg.Field(n)
		l := loc
		l.Field = n
		if reps := fl.NumRepetitions(); reps > 1 {
			s.add(Problem{Severity: SeverityWarning, Location: l, Offset: e.off, Code: ProblemBatchRepeatedField,
				Message: fmt.Sprintf("%s-%d repeats (%d values) but is a single value", name, n, reps)})
		}
		if n > 6 {
			continue
		}
		for r, rep := range fl.Repetitions() {
			if c := rep.NumComponents(); c > 3 {
				l.Repetition, l.Component = r, 4
				s.add(Problem{Severity: SeverityWarning, Location: l, Offset: e.off, Code: ProblemBatchExtraField,
					Message: fmt.Sprintf("%s-%d has %d components; a hierarchic designator (HD) has 3", name, n, c)})
			}
		}
	}
}

func envelopeVersionText(v string) string {
	if v == "" {
		return "(version unknown)"
	}
	return "v" + v
}
