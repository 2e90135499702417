package hl7v2

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// BatchFile is an input split into messages by SplitBatch: an HL7 batch
// file (FHS, BHS … BTS, FTS), a batch without the file envelope, or a plain
// run of MSH messages.
//
// The grammar is [FHS] { [BHS] { MSH … } [BTS] } [FTS]. Every message found
// is in Messages, whether or not the envelope around it is right; what is
// wrong with the envelope is in Problems.
type BatchFile struct {
	// Delimiters are the envelope's: FHS-1/FHS-2, else the first BHS, else
	// the first MSH (else the defaults). Each message still declares, and is
	// parsed with, its own.
	Delimiters Delimiters
	// FHS and FTS are the first file header and trailer, nil when absent.
	// Repeated ones are reported in Problems.
	FHS, FTS *Segment
	// Batches are the BHS … BTS groups in input order.
	Batches []Batch
	// Messages are all messages in input order, batched or not.
	Messages []BatchMessage
	// Problems are the structure problems of the envelope and of the
	// splitting, in input order. Problems inside a message are found by
	// parsing its Data.
	Problems []Problem

	in        []byte
	lineOnce  sync.Once
	lineStart []int
}

// Batch is one BHS … BTS group of a BatchFile.
type Batch struct {
	// BHS opens the batch; BTS closes it and is nil when missing.
	BHS, BTS *Segment
	// Start and End delimit the batch's messages: BatchFile.Messages[Start:End].
	Start, End int
}

// DeclaredCount returns BTS-1, the number of messages the sender says the
// batch holds, and whether BTS-1 is present and a non-negative integer.
func (b Batch) DeclaredCount() (int, bool) { return declaredCount(b.BTS) }

// DeclaredBatchCount returns FTS-1, the number of batches the sender says
// the file holds, and whether FTS-1 is present and a non-negative integer.
func (f *BatchFile) DeclaredBatchCount() (int, bool) { return declaredCount(f.FTS) }

// BatchMessage is one message of a BatchFile.
type BatchMessage struct {
	// Data holds the message's segments, each as written and terminated by
	// a CR, starting with MSH: input for Parse. Blank lines are left out
	// (and reported in BatchFile.Problems). It may share memory with the
	// input given to SplitBatch; its capacity is capped so that appending
	// to it never writes into the input.
	Data []byte
	// Offset is the byte offset of the message's MSH in the input.
	Offset int
	// Batch indexes BatchFile.Batches, or is -1 when the message is not
	// inside a BHS … BTS group.
	Batch int
}

// Line returns the 1-based line number of a byte offset in the input given
// to SplitBatch, counting CR, LF and CRLF each as one line end, as an editor
// would. It is meant for reports: offsets come from Problem.Offset and
// BatchMessage.Offset. Offsets past the end give the last line.
func (f *BatchFile) Line(offset int) int {
	f.lineOnce.Do(func() {
		f.lineStart = []int{0}
		for i := 0; i < len(f.in); i++ {
			switch f.in[i] {
			case '\r':
				if i+1 < len(f.in) && f.in[i+1] == '\n' {
					i++
				}
				f.lineStart = append(f.lineStart, i+1)
			case '\n':
				f.lineStart = append(f.lineStart, i+1)
			}
		}
	})
	lo, hi := 0, len(f.lineStart) // first line start > offset, by bisection
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if f.lineStart[mid] <= offset {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return max(lo, 1)
}

// HasErrors reports whether any envelope problem has Error severity or worse.
func (f *BatchFile) HasErrors() bool {
	for _, p := range f.Problems {
		if p.Severity >= SeverityError {
			return true
		}
	}
	return false
}

// declaredCount reads field 1 of a BTS or FTS segment as a count.
func declaredCount(s *Segment) (int, bool) {
	if s == nil {
		return 0, false
	}
	n, err := strconv.Atoi(strings.TrimSpace(s.Field(1).Value()))
	if err != nil || n < 0 {
		return 0, false
	}
	return n, true
}

// SplitBatch splits data into its messages and checks the batch envelope
// around them.
//
// Segments may end in CR, LF or CRLF, and a BOM, leading whitespace and
// blank lines are skipped, exactly as Parse does: SplitBatch finds segment
// boundaries with Parse's rules, so each message's Data parses into the
// segments SplitBatch saw. Every MSH starts a new message. FHS, BHS, BTS and
// FTS lines are envelope; any other line belongs to the message before it.
//
// SplitBatch is lenient like Parse: it never drops a message, and each
// deviation from the batch grammar (a missing or repeated envelope segment,
// counts in BTS-1 or FTS-1 that do not match, messages outside the batch,
// stray segments) is a Problem in BatchFile.Problems with the location of
// the segment concerned and its byte offset (see BatchFile.Line). It fails
// only when the input holds no MSH at all: then the error is a *ParseError
// wrapping ErrNoMSH, returned together with the BatchFile describing the
// envelope that was found.
func SplitBatch(data []byte) (*BatchFile, error) {
	s := batchSplitter{f: &BatchFile{in: data}, in: data, open: -1, sep: '|', env: DefaultDelimiters}
	s.run()
	f := s.f
	var err error
	if len(f.Messages) == 0 {
		detail := "input is empty"
		if len(s.names) > 0 {
			detail = "found only " + strings.Join(s.names, ", ")
		}
		err = &ParseError{Err: ErrNoMSH, Location: Location{Segment: "MSH"}, Offset: max(s.firstSeg, 0), Detail: detail}
	}
	s.checkEnvelope()
	// Problems are found at the segment that reveals them, which may come
	// later than the one they are about; callers want them in input order.
	sort.SliceStable(f.Problems, func(i, j int) bool { return f.Problems[i].Offset < f.Problems[j].Offset })
	return f, err
}

// batchSplitter holds the state of one SplitBatch call.
type batchSplitter struct {
	f  *BatchFile
	in []byte

	sep      byte     // field separator for finding line ends
	firstSeg int      // offset of the first non-blank line, -1 before it
	names    []string // distinct segment IDs seen, for the no-MSH error
	counts   [6]int   // occurrences of FHS, BHS, BTS, FTS, MSH, other so far

	cur   *batchPending // message being collected, nil between messages
	spans [][2]int      // spans of the previous message, reused by the next
	stray *strayRun
	blank int // offset of the first blank line not yet reported, -1 if none

	open     int   // index of the open batch (BHS seen, no BTS yet), -1 if none
	batchOff []int // offset of each batch's BHS
	afterBTS bool  // the last envelope segment was a BTS closing a batch
	loose    *looseRun

	// The current file section runs from an FHS (or the start) to its FTS.
	inFile    bool // an FHS opened the section and no FTS closed it yet
	closed    bool // an FTS closed the section; only an FHS may follow
	afterFTS  bool // afterFTS was reported for this section
	secStart  int  // offset of the section's FHS
	secLoose  int  // messages of the section outside any batch
	secGroups int  // batches opened in the section

	// Delimiters: the first readable FHS and BHS ones (for
	// BatchFile.Delimiters), those of the section's FHS and the open
	// batch's BHS when readable (what BTS, FTS and messages should use), and
	// the latest readable ones of any header (the fallback).
	firstFHS, firstBHS *Delimiters
	fileEnv, batchEnv  *Delimiters
	env                Delimiters
	msgEnv             []msgDelimiters // per message
	envSegs            []envSegment    // every envelope segment, for checkEnvelope
}

// envSegment is an envelope segment and where it is in the input.
type envSegment struct {
	seg *Segment
	off int
}

// batchPending is a message being collected: where its segments are in the input.
type batchPending struct {
	spans      [][2]int // [start, end) of each segment, terminator excluded
	contiguous bool     // each segment ends in a lone CR directly followed by the next
}

// strayRun is a run of segments outside any message.
type strayRun struct {
	off   int
	name  string
	n     int
	names []string
}

// looseRun is a run of messages outside any BHS … BTS group.
type looseRun struct {
	msg, n   int
	off      int
	afterBTS bool // follows a BTS; otherwise it precedes any BHS of its section
}

const (
	lineFHS = iota
	lineBHS
	lineBTS
	lineFTS
	lineMSH
	lineOther
)

var envelopeNames = [...]string{lineFHS: "FHS", lineBHS: "BHS", lineBTS: "BTS", lineFTS: "FTS", lineMSH: "MSH"}

// batchLineKind classifies a line by its segment ID: the three letters followed by
// a non-alphanumeric byte (the field separator) or the end of the line.
func batchLineKind(line []byte) int {
	if len(line) < 3 || len(line) > 3 && isAlnum(line[3]) {
		return lineOther
	}
	for k, n := range envelopeNames {
		if string(line[:3]) == n {
			return k
		}
	}
	return lineOther
}

func (s *batchSplitter) run() {
	in := s.in
	s.firstSeg, s.blank = -1, -1
	pos := 0
	if len(in) >= 3 && string(in[:3]) == bom {
		pos = 3
		s.add(Problem{Severity: SeverityInfo, Offset: 0, Code: ProblemBOM, Message: "UTF-8 byte order mark skipped"})
	}
	start := pos
	for pos < len(in) && isSpaceOrNewline(in[pos]) {
		pos++
	}
	if pos > start && pos < len(in) {
		s.add(Problem{Severity: SeverityWarning, Offset: start, Code: ProblemLeadingJunk,
			Message: fmt.Sprintf("%d whitespace bytes before the first segment skipped", pos-start)})
	}
	for pos < len(in) {
		// A header line declares the field separator that decides where
		// its lines end (see Parse on bare LFs): Parse reads a message with
		// its MSH-1, so the split must too.
		if pos+3 < len(in) && (string(in[pos:pos+3]) == "MSH" || string(in[pos:pos+3]) == "FHS" || string(in[pos:pos+3]) == "BHS") &&
			in[pos+3] != '\r' && in[pos+3] != '\n' && !isAlnum(in[pos+3]) {
			s.sep = in[pos+3]
		}
		end, next, _ := lineEnd(in, pos, s.sep)
		if blankBytes(in[pos:end]) {
			if s.blank < 0 {
				s.blank = pos
			}
		} else {
			s.line(pos, end, next)
		}
		pos = next
	}
	s.finishMessage()
	s.finishStray()
	s.closeBatch(len(in), "the end of the input")
	if s.inFile {
		s.add(Problem{Severity: SeverityError, Location: Location{Segment: "FHS", SegmentIndex: s.counts[lineFHS]}, Offset: len(in),
			Code: ProblemBatchMissingFTS, Message: fmt.Sprintf("file opened by FHS at line %d has no FTS", s.f.Line(s.secStart))})
	}
	s.resolveLoose(false)
}

// line handles one non-blank segment line in[pos:end]; next is where the
// following line starts.
func (s *batchSplitter) line(pos, end, next int) {
	ln := s.in[pos:end]
	k := batchLineKind(ln)
	if s.firstSeg < 0 {
		s.firstSeg = pos
	}
	s.counts[k]++
	s.noteName(ln)
	if s.blank >= 0 {
		// Blank lines inside a message are what Parse warns about; between
		// messages or envelope segments they are a harmless layout habit.
		pr := Problem{Severity: SeverityInfo, Offset: s.blank, Code: ProblemEmptySegment, Message: "blank line between segments skipped"}
		if s.cur != nil && k == lineOther {
			pr.Severity = SeverityWarning
			pr.Message = fmt.Sprintf("blank line inside message %d skipped", len(s.f.Messages))
		}
		s.add(pr)
		s.blank = -1
	}
	if k == lineOther {
		if s.cur != nil {
			s.cur.append(s.in, pos, end, next)
			return
		}
		s.strayLine(ln, pos)
		return
	}
	s.finishMessage()
	s.finishStray()
	switch k {
	case lineMSH:
		s.startMessage(pos, end, next)
	case lineFHS:
		s.fileHeader(ln, pos)
	case lineBHS:
		s.batchHeader(ln, pos)
	case lineBTS:
		s.batchTrailer(ln, pos)
	case lineFTS:
		s.fileTrailer(ln, pos)
	}
}

func (s *batchSplitter) add(p Problem) { s.f.Problems = append(s.f.Problems, p) }

// noteName remembers the first few distinct segment IDs for the error
// returned when there is no MSH; once there is a message it has nothing
// to do.
func (s *batchSplitter) noteName(ln []byte) {
	if len(s.f.Messages) > 0 || len(s.names) >= 8 {
		return
	}
	name := batchSegmentID(ln, s.sep)
	for _, n := range s.names {
		if n == name {
			return
		}
	}
	s.names = append(s.names, name)
}

// blankBytes is isBlank for a line of the input, without converting it.
func blankBytes(line []byte) bool {
	for _, c := range line {
		if c != ' ' && c != '\t' {
			return false
		}
	}
	return true
}

// batchSegmentID returns the ID of a segment line, truncated for messages.
func batchSegmentID(ln []byte, sep byte) string {
	name := ln
	if i := strings.IndexByte(string(ln), sep); i >= 0 {
		name = ln[:i]
	}
	return truncate(string(name), 8)
}

func (s *batchSplitter) startMessage(pos, end, next int) {
	if s.closed && !s.afterFTS {
		s.afterFTS = true
		s.add(Problem{Severity: SeverityError, Location: Location{Segment: "MSH", SegmentIndex: s.counts[lineMSH]}, Offset: pos,
			Code: ProblemBatchAfterFTS, Message: "message after the FTS that closed the file"})
	}
	idx := len(s.f.Messages)
	batch := s.open
	if batch >= 0 {
		if b := &s.f.Batches[batch]; b.End == b.Start {
			b.Start = idx
		}
		s.f.Batches[batch].End = idx + 1
	} else {
		s.secLoose++
		if s.loose != nil {
			s.loose.n++
		} else {
			s.loose = &looseRun{msg: idx, n: 1, off: pos, afterBTS: s.afterBTS}
		}
	}
	s.f.Messages = append(s.f.Messages, BatchMessage{Offset: pos, Batch: batch})
	s.cur = &batchPending{contiguous: true, spans: s.spans[:0]}
	s.cur.append(s.in, pos, end, next)
	// MSH-1 and MSH-2 fit in the first bytes of the line (a longer MSH-2 is
	// reported by Parse, not here), so only those are converted.
	own, _, err := readDelimiters(string(s.in[pos:min(end, pos+16)]), pos)
	if err == nil {
		s.env = own
	}
	s.msgEnv = append(s.msgEnv, msgDelimiters{env: s.envelope(), own: own, ok: err == nil})
}

// msgDelimiters are the delimiters of a message's envelope (nil when it has
// none readable) and of its own MSH (ok when readable).
type msgDelimiters struct {
	env *Delimiters
	own Delimiters
	ok  bool
}

// envelope returns the readable delimiters of the envelope around the
// current position: the open batch's BHS, else the section's FHS; nil
// when there are none.
func (s *batchSplitter) envelope() *Delimiters {
	if s.open >= 0 && s.batchEnv != nil {
		return s.batchEnv
	}
	if s.inFile {
		return s.fileEnv
	}
	return nil
}

func (p *batchPending) append(in []byte, pos, end, next int) {
	if n := len(p.spans); n > 0 && p.spans[n-1][1]+1 != pos {
		p.contiguous = false
	}
	// A segment ends contiguously only in a lone CR: the form Data needs.
	if next != end+1 || in[end] != '\r' {
		p.contiguous = false
	}
	p.spans = append(p.spans, [2]int{pos, end})
}

// finishMessage turns the message being collected into Data: a slice of
// the input when it is already CR-terminated throughout, else a copy.
func (s *batchSplitter) finishMessage() {
	p := s.cur
	if p == nil {
		return
	}
	s.cur, s.spans = nil, p.spans
	first, last := p.spans[0][0], p.spans[len(p.spans)-1][1]
	var data []byte
	if p.contiguous {
		data = s.in[first : last+1 : last+1]
	} else {
		n := 0
		for _, sp := range p.spans {
			n += sp[1] - sp[0] + 1
		}
		data = make([]byte, 0, n)
		for _, sp := range p.spans {
			data = append(append(data, s.in[sp[0]:sp[1]]...), '\r')
		}
	}
	s.f.Messages[len(s.f.Messages)-1].Data = data
}

// strayLine records a segment that belongs to no message: before the first
// MSH or after an envelope segment.
func (s *batchSplitter) strayLine(ln []byte, pos int) {
	name := batchSegmentID(ln, s.sep)
	if s.stray == nil {
		s.stray = &strayRun{off: pos, name: name}
	}
	s.stray.n++
	if len(s.stray.names) < 5 {
		s.stray.names = append(s.stray.names, name)
	}
}

func (s *batchSplitter) finishStray() {
	r := s.stray
	if r == nil {
		return
	}
	s.stray = nil
	where := "before the first MSH"
	if len(s.f.Messages) > 0 {
		where = "after an envelope segment, outside any message"
	}
	names := strings.Join(r.names, ", ")
	if r.n > len(r.names) {
		names += ", …"
	}
	s.add(Problem{Severity: SeverityError, Location: Location{Segment: r.name}, Offset: r.off, Code: ProblemBatchStraySegment,
		Message: fmt.Sprintf("%d segment(s) %s skipped (%s)", r.n, where, names)})
}
