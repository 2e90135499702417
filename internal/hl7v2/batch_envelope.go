package hl7v2

import (
	"fmt"
	"strconv"
	"strings"
)

// Problem codes reported by SplitBatch about the batch envelope
// ([FHS] { [BHS] { MSH … } [BTS] } [FTS]) and the splitting.
const (
	// ProblemBatchMissingBTS: a batch opened by a BHS is not closed by a BTS
	// before the next BHS, FHS, FTS or the end of the input (Error).
	ProblemBatchMissingBTS ProblemCode = "batch-missing-bts"
	// ProblemBatchMissingFTS: a file opened by an FHS has no FTS (Error).
	ProblemBatchMissingFTS ProblemCode = "batch-missing-fts"
	// ProblemBatchUnpairedBTS: a BTS with no open batch, such as a second
	// BTS in a row (Error).
	ProblemBatchUnpairedBTS ProblemCode = "batch-unpaired-bts"
	// ProblemBatchUnpairedFTS: an FTS with no FHS before it (Error).
	ProblemBatchUnpairedFTS ProblemCode = "batch-unpaired-fts"
	// ProblemBatchRepeatedFHS: a second FHS, usually two files concatenated;
	// each FHS … FTS is checked as a file of its own (Error).
	ProblemBatchRepeatedFHS ProblemCode = "batch-repeated-fhs"
	// ProblemBatchRepeatedFTS: an FTS after the FTS that closed the file (Error).
	ProblemBatchRepeatedFTS ProblemCode = "batch-repeated-fts"
	// ProblemBatchFHSNotFirst: segments precede the FHS (Error).
	ProblemBatchFHSNotFirst ProblemCode = "batch-fhs-not-first"
	// ProblemBatchMSHBeforeBHS: messages outside any batch precede a BHS
	// (Error): the file mixes batched and unbatched messages.
	ProblemBatchMSHBeforeBHS ProblemCode = "batch-msh-before-bhs"
	// ProblemBatchMSHAfterBTS: messages follow the BTS that closed a batch
	// without a new BHS (Error).
	ProblemBatchMSHAfterBTS ProblemCode = "batch-msh-after-bts"
	// ProblemBatchAfterFTS: messages or a BHS follow the FTS that closed the
	// file (Error).
	ProblemBatchAfterFTS ProblemCode = "batch-after-fts"
	// ProblemBatchStraySegment: segments that are neither envelope nor part
	// of a message (before the first MSH, or right after BHS, BTS or FTS)
	// were skipped (Error).
	ProblemBatchStraySegment ProblemCode = "batch-stray-segment"
	// ProblemBatchCountMismatch: BTS-1 differs from the number of messages
	// in the batch (Error).
	ProblemBatchCountMismatch ProblemCode = "batch-count-mismatch"
	// ProblemBatchFileCountMismatch: FTS-1 differs from the number of
	// batches in the file (Error). Messages of a file without any BHS count
	// as one batch.
	ProblemBatchFileCountMismatch ProblemCode = "batch-file-count-mismatch"
	// ProblemBatchCountMissing: BTS-1 or FTS-1 is empty, so the count cannot
	// be checked (Warning; both fields are optional in HL7).
	ProblemBatchCountMissing ProblemCode = "batch-count-missing"
	// ProblemBatchCountInvalid: BTS-1 or FTS-1 is not a non-negative
	// integer (Error).
	ProblemBatchCountInvalid ProblemCode = "batch-count-invalid"
	// ProblemBatchEmpty: a BHS … BTS batch holds no message (Warning).
	ProblemBatchEmpty ProblemCode = "batch-empty"
	// ProblemBatchExtraField: an envelope segment has more fields than its
	// HL7 version defines, or an HD field (FHS/BHS-3 to -6) more than three
	// components (Warning; receivers ignore the extra data).
	ProblemBatchExtraField ProblemCode = "batch-extra-field"
	// ProblemBatchRepeatedField: a non-repeating FHS/BHS field (3 to 12) has
	// repetitions (Warning).
	ProblemBatchRepeatedField ProblemCode = "batch-repeated-field"
	// ProblemBatchDelimiters: an FHS or BHS declares unusable delimiters
	// (Error; the next readable ones are used), or a message declares other
	// delimiters than its envelope (Warning; each message is parsed with
	// its own).
	ProblemBatchDelimiters ProblemCode = "batch-delimiters"
)

// fileHeader handles an FHS line: it opens a new file section.
func (s *batchSplitter) fileHeader(ln []byte, pos int) {
	s.closeBatch(pos, "the next FHS")
	s.resolveLoose(false)
	seg, d := s.header(ln, pos, lineFHS)
	loc := seg.Location()
	switch {
	case s.counts[lineFHS] > 1:
		s.add(Problem{Severity: SeverityError, Location: loc, Offset: pos, Code: ProblemBatchRepeatedFHS,
			Message: "another FHS: a second file starts here"})
		if s.inFile {
			s.add(Problem{Severity: SeverityError, Location: Location{Segment: "FHS", SegmentIndex: s.counts[lineFHS] - 1}, Offset: pos,
				Code: ProblemBatchMissingFTS, Message: fmt.Sprintf("file opened by FHS at line %d has no FTS before the next FHS", s.f.Line(s.secStart))})
		}
	case s.firstSeg < pos:
		s.add(Problem{Severity: SeverityError, Location: loc, Offset: pos, Code: ProblemBatchFHSNotFirst,
			Message: fmt.Sprintf("FHS is not the first segment (line %d comes before it)", s.f.Line(s.firstSeg))})
	}
	if s.f.FHS == nil {
		s.f.FHS = seg
		s.firstFHS = d
	}
	s.fileEnv = d
	s.inFile, s.closed, s.afterFTS, s.afterBTS = true, false, false, false
	s.secStart, s.secLoose, s.secGroups = pos, 0, 0
}

// batchHeader handles a BHS line: it opens a batch.
func (s *batchSplitter) batchHeader(ln []byte, pos int) {
	s.closeBatch(pos, "the next BHS")
	s.resolveLoose(true)
	seg, d := s.header(ln, pos, lineBHS)
	if s.closed && !s.afterFTS {
		s.afterFTS = true
		s.add(Problem{Severity: SeverityError, Location: seg.Location(), Offset: pos, Code: ProblemBatchAfterFTS,
			Message: "BHS after the FTS that closed the file"})
	}
	if s.firstBHS == nil {
		s.firstBHS = d
	}
	n := len(s.f.Messages)
	s.f.Batches = append(s.f.Batches, Batch{BHS: seg, Start: n, End: n})
	s.batchOff = append(s.batchOff, pos)
	s.open, s.batchEnv = len(s.f.Batches)-1, d
	s.secGroups++
	s.afterBTS = false
}

// batchTrailer handles a BTS line: it closes the open batch and checks its
// message count.
func (s *batchSplitter) batchTrailer(ln []byte, pos int) {
	seg := s.trailer(ln, pos, lineBTS)
	s.resolveLoose(false)
	if s.open < 0 {
		s.add(Problem{Severity: SeverityError, Location: seg.Location(), Offset: pos, Code: ProblemBatchUnpairedBTS,
			Message: "BTS without an open batch (no BHS since the last BTS)"})
		return
	}
	b := &s.f.Batches[s.open]
	b.BTS = seg
	n := b.End - b.Start
	s.checkCount(seg, pos, n, ProblemBatchCountMismatch, "message(s) in the batch")
	if n == 0 {
		s.add(Problem{Severity: SeverityWarning, Location: b.BHS.Location(), Offset: pos, Code: ProblemBatchEmpty,
			Message: "batch holds no message"})
	}
	s.open, s.batchEnv = -1, nil
	s.afterBTS = true
}

// fileTrailer handles an FTS line: it closes the file section and checks
// its batch count.
func (s *batchSplitter) fileTrailer(ln []byte, pos int) {
	s.closeBatch(pos, "FTS")
	s.resolveLoose(false)
	seg := s.trailer(ln, pos, lineFTS)
	loc := seg.Location()
	switch {
	case s.closed:
		s.add(Problem{Severity: SeverityError, Location: loc, Offset: pos, Code: ProblemBatchRepeatedFTS,
			Message: "another FTS after the one that closed the file"})
	case !s.inFile:
		s.add(Problem{Severity: SeverityError, Location: loc, Offset: pos, Code: ProblemBatchUnpairedFTS,
			Message: "FTS without an FHS"})
		fallthrough
	default:
		groups := s.secGroups
		if groups == 0 && s.secLoose > 0 {
			groups = 1 // a file of messages without BHS is one implicit batch
		}
		s.checkCount(seg, pos, groups, ProblemBatchFileCountMismatch, "batch(es) in the file")
	}
	if s.f.FTS == nil {
		s.f.FTS = seg
	}
	s.inFile, s.closed, s.afterBTS = false, true, false
}

// closeBatch reports the open batch, if any, as missing its BTS; what says
// what came instead.
func (s *batchSplitter) closeBatch(pos int, what string) {
	if s.open < 0 {
		return
	}
	b := s.f.Batches[s.open]
	s.add(Problem{Severity: SeverityError, Location: b.BHS.Location(), Offset: pos, Code: ProblemBatchMissingBTS,
		Message: fmt.Sprintf("batch opened by BHS at line %d has no BTS before %s", s.f.Line(s.batchOff[s.open]), what)})
	if b.End == b.Start {
		s.add(Problem{Severity: SeverityWarning, Location: b.BHS.Location(), Offset: pos, Code: ProblemBatchEmpty,
			Message: "batch holds no message"})
	}
	s.open, s.batchEnv = -1, nil
}

// resolveLoose reports the run of messages outside any batch that the
// current envelope segment ends. A run before anything batch-like is only
// a problem when a BHS follows it: a plain run of messages is fine.
func (s *batchSplitter) resolveLoose(bhsFollows bool) {
	r := s.loose
	if r == nil {
		return
	}
	s.loose = nil
	loc := Location{Segment: "MSH", SegmentIndex: r.msg + 1}
	switch {
	case r.afterBTS:
		s.add(Problem{Severity: SeverityError, Location: loc, Offset: r.off, Code: ProblemBatchMSHAfterBTS,
			Message: fmt.Sprintf("%d message(s) after a BTS are outside any batch (no BHS opens one)", r.n)})
	case bhsFollows:
		s.add(Problem{Severity: SeverityError, Location: loc, Offset: r.off, Code: ProblemBatchMSHBeforeBHS,
			Message: fmt.Sprintf("%d message(s) before the BHS are outside any batch", r.n)})
	}
}

// checkCount compares field 1 of a BTS or FTS with the count found.
func (s *batchSplitter) checkCount(seg *Segment, pos, got int, code ProblemCode, what string) {
	loc := seg.Location()
	loc.Field = 1
	raw := strings.TrimSpace(seg.Field(1).Value())
	if raw == "" {
		s.add(Problem{Severity: SeverityWarning, Location: loc, Offset: pos, Code: ProblemBatchCountMissing,
			Message: fmt.Sprintf("%s-1 is empty; %d %s not checked", seg.Name(), got, what)})
		return
	}
	n, err := strconv.Atoi(raw)
	if err != nil || n < 0 {
		s.add(Problem{Severity: SeverityError, Location: loc, Offset: pos, Code: ProblemBatchCountInvalid,
			Message: fmt.Sprintf("%s-1 %q is not a count", seg.Name(), truncate(raw, 20))})
		return
	}
	if n != got {
		s.add(Problem{Severity: SeverityError, Location: loc, Offset: pos, Code: code,
			Message: fmt.Sprintf("%s-1 says %d, found %d %s", seg.Name(), n, got, what)})
	}
}

// header builds an FHS or BHS segment from its line. It returns the
// segment and its delimiters, or nil delimiters when they are unusable (the
// problem is reported and the latest readable ones are used to split it).
func (s *batchSplitter) header(ln []byte, pos, k int) (*Segment, *Delimiters) {
	line := string(ln)
	name := line[:3]
	d, probs, err := readDelimiters(line, pos)
	var dp *Delimiters
	if err != nil {
		// The problems about MSH-2's length only matter when it is usable.
		why := strings.ReplaceAll(err.Detail, "MSH-", name+"-")
		if why == "" {
			why = "no field separator"
		}
		s.add(Problem{Severity: SeverityError, Location: Location{Segment: name, SegmentIndex: s.counts[k], Field: 2}, Offset: pos,
			Code: ProblemBatchDelimiters, Message: fmt.Sprintf("%s delimiters unusable (%s); using %s", name, why, envelopeDelimText(s.env))})
		d = s.env
		if len(line) > 3 {
			d.Field = line[3]
		}
	} else {
		s.f.Problems = append(s.f.Problems, probs...)
		dp = &d
		s.env = d
	}
	fields := []string{name}
	if len(line) > 3 {
		fields = append(fields, line[3:4])
		// MSH numbering: field 1 is the separator itself, and the first
		// part after it is field 2, the encoding characters.
		fields = append(fields, strings.Split(line[4:], string(d.Field))...)
	}
	seg := &Segment{fields: fields, d: d, header: true, seq: s.counts[k]}
	s.envSegs = append(s.envSegs, envSegment{seg: seg, off: pos})
	return seg, dp
}

// trailer builds a BTS or FTS segment from its line, split with the
// delimiters of the envelope it closes.
func (s *batchSplitter) trailer(ln []byte, pos, k int) *Segment {
	d := s.env
	if e := s.envelope(); e != nil {
		d = *e
	}
	seg := &Segment{fields: strings.Split(string(ln), string(d.Field)), d: d, seq: s.counts[k]}
	s.envSegs = append(s.envSegs, envSegment{seg: seg, off: pos})
	return seg
}

// envelopeDelimText renders delimiters as they are written in MSH-1 and MSH-2.
func envelopeDelimText(d Delimiters) string { return string(d.Field) + d.EncodingCharacters() }
