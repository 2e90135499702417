package hl7v2

import (
	"fmt"
	"strings"
	"time"
)

// Option configures Parse.
type Option func(*config)

type config struct {
	loc         *time.Location
	strict      bool
	charsetName string   // as given to WithCharset
	charset     *charset // its table entry; nil when unknown
}

func newConfig(opts []Option) config {
	cfg := config{loc: time.UTC}
	for _, o := range opts {
		o(&cfg)
	}
	return cfg
}

// WithLocation sets the zone Message.Timestamp assumes for MSH-7 values that
// carry no UTC offset (HL7 says they are in the sender's local time, which
// only the channel configuration knows). The default is UTC.
func WithLocation(loc *time.Location) Option {
	return func(c *config) {
		if loc != nil {
			c.loc = loc
		}
	}
}

// WithStrict makes Parse fail with a *ParseError wrapping ErrStrict when it
// finds any problem of Error severity, instead of returning the message with
// the problem recorded.
func WithStrict() Option {
	return func(c *config) { c.strict = true }
}

const bom = "\xef\xbb\xbf"

// Parse reads one HL7 v2 message.
//
// The delimiters come from MSH-1/MSH-2. Segments may end in CR, LF or CRLF
// (mixed too); a leading UTF-8 BOM, whitespace before MSH and blank lines
// are skipped. A bare LF that is not followed by something shaped like a
// segment (2–4 letters/digits, then the field separator or end of line) is
// kept inside the field it interrupts: real feeds put raw newlines in OBX-5
// text, and splitting there would fabricate segments out of report lines.
//
// Parse is lenient: irregularities become Problems on the message and
// nothing is dropped without a Problem saying so. It fails only when there
// is no MSH to start from or its delimiters are unusable; the error is a
// *ParseError wrapping ErrNoMSH, ErrShortMSH or ErrBadDelimiters.
//
// The message holds UTF-8 text. Input that is ASCII or valid UTF-8 is used
// as is; other input is decoded first, from the charset MSH-18 names or
// the connector's (WithCharset), with the rules and problems described
// there and in the package documentation. Problem offsets always refer to
// the input bytes.
//
// Parse copies data once into a string and slices that for every field, so
// the caller may reuse data afterwards and field access does not allocate.
// Input that needs decoding costs a second copy.
func Parse(data []byte, opts ...Option) (*Message, error) {
	cfg := newConfig(opts)
	s := string(data)
	start, probs, err := findMSH(s)
	if err != nil {
		return nil, err
	}
	m := &Message{loc: cfg.loc}
	p := parser{m: m}
	p.problems = probs
	end := mshEnd(data, start) // s is still data's bytes: nothing decoded yet
	d, dprobs, perr := readDelimiters(s[start:end], start)
	if perr != nil {
		return nil, perr
	}
	p.problems = append(p.problems, dprobs...)
	m.d = d

	pl := planText(s, start, s[start:end], d, &cfg)
	for _, mk := range pl.marks {
		p.marks = append(p.marks, mark{len(p.problems) + mk.prob, mk.at})
	}
	p.problems = append(p.problems, pl.problems...)
	raw := s
	if pl.mode != keepText {
		var u undefinedBytes
		s, u = pl.decode(s, start)
		if u.count > 0 {
			p.marks = append(p.marks, mark{len(p.problems), u.out})
			p.add(Problem{Severity: SeverityWarning, Offset: u.in, Code: ProblemCharsetUndefined,
				Message: fmt.Sprintf("%d byte(s) undefined in %s, the first 0x%02X, replaced by U+FFFD", u.count, pl.cs.name, raw[u.in])})
		}
	}
	m.charset = pl.name
	p.s = s
	runFrom := len(p.problems)
	p.run(start)
	if pl.mode != keepText {
		pl.inputOffsets(raw, start, p.problems[runFrom:])
	}
	m.problems = p.problems
	if cfg.strict {
		for _, pr := range m.problems {
			if pr.Severity >= SeverityError {
				return nil, &ParseError{Err: ErrStrict, Location: pr.Location, Offset: pr.Offset, Detail: pr.Message}
			}
		}
	}
	return m, nil
}

// findMSH skips a BOM and leading whitespace and checks that MSH follows.
func findMSH[T ~string | ~[]byte](s T) (int, []Problem, error) {
	var probs []Problem
	start := 0
	if len(s) >= 3 && string(s[:3]) == bom {
		start = 3
		probs = append(probs, Problem{Severity: SeverityInfo, Offset: 0, Code: ProblemBOM,
			Message: "UTF-8 byte order mark before MSH skipped"})
	}
	i := start
	for i < len(s) && isSpaceOrNewline(s[i]) {
		i++
	}
	if i > start {
		probs = append(probs, Problem{Severity: SeverityWarning, Offset: start, Code: ProblemLeadingJunk,
			Message: fmt.Sprintf("%d whitespace bytes before MSH skipped", i-start)})
	}
	if len(s)-i < 3 || string(s[i:i+3]) != "MSH" {
		detail := ""
		if len(s)-i >= 3 && (string(s[i:i+3]) == "FHS" || string(s[i:i+3]) == "BHS") {
			detail = "input is a batch (" + string(s[i:i+3]) + " first)"
		}
		return 0, probs, &ParseError{Err: ErrNoMSH, Location: Location{Segment: "MSH"}, Offset: i, Detail: detail}
	}
	return i, probs, nil
}

func isSpaceOrNewline(c byte) bool {
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f'
}

// lineEnd finds the end of the segment starting at from. It returns the
// offset of the terminator (end), where the next segment starts (next), and
// whether bare LFs were kept inside the segment (see Parse).
func lineEnd[T ~string | ~[]byte](s T, from int, sep byte) (end, next int, embedded bool) {
	blank := true // a blank line has no field to carry a newline
	for i := from; i < len(s); i++ {
		switch s[i] {
		case '\r':
			if i+1 < len(s) && s[i+1] == '\n' {
				return i, i + 2, embedded
			}
			return i, i + 1, embedded
		case '\n':
			if blank || startsSegment(s, i+1, sep) {
				return i, i + 1, embedded
			}
			embedded = true
		case ' ', '\t':
		default:
			blank = false
		}
	}
	return len(s), len(s), embedded
}

// startsSegment reports whether the text at i can begin a new segment: end
// of input, a blank line, or 2–4 letters/digits followed by the field
// separator or a line end. Segment IDs are three characters, but accepting
// two and four keeps mistyped IDs ("PV", "PIDX") as segments, where they are
// reported, instead of gluing them into the previous field.
func startsSegment[T ~string | ~[]byte](s T, i int, sep byte) bool {
	j := i
	for j < len(s) && (s[j] == ' ' || s[j] == '\t') {
		j++
	}
	if j == len(s) || s[j] == '\r' || s[j] == '\n' {
		return true
	}
	j = i
	for j < len(s) && j-i < 5 && isAlnum(s[j]) {
		j++
	}
	n := j - i
	if n < 2 || n > 4 {
		return false
	}
	return j == len(s) || s[j] == sep || s[j] == '\r' || s[j] == '\n'
}

type parser struct {
	m        *Message
	s        string
	problems []Problem
	fields   []string // shared backing array for every segment's fields
	marks    []mark   // problems whose Location is the segment text at an offset

	// Occurrence counts per segment ID (see count): the first IDs in a
	// fixed array, so that the usual message (a full ADT^A01 has some 20
	// distinct IDs) counts them without allocating; any further ones in
	// seenMore. An array, not a slice of it, keeps the parser on the stack.
	seen     [24]nameCount
	nSeen    int
	seenMore []nameCount
}

type nameCount struct {
	name string
	n    int
}

func (p *parser) run(start int) {
	s, sep := p.s, p.m.d.Field
	// Size the shared arrays from cheap counts (memchr-speed) so the
	// common case allocates each exactly once.
	nCR := strings.Count(s, "\r")
	hasLF := strings.IndexByte(s, '\n') >= 0
	nLines := nCR
	if hasLF {
		nLines = max(nCR, strings.Count(s, "\n"))
	}
	nLines++
	p.fields = make([]string, 0, strings.Count(s, string(sep))+nLines+1)
	block := make([]Segment, 0, nLines)

	blankAt := -1 // offset of the first blank line not yet reported
	for pos := start; pos < len(s); {
		var end, next int
		embedded := false
		if !hasLF { // CR-only input: let IndexByte run at memchr speed
			if i := strings.IndexByte(s[pos:], '\r'); i >= 0 {
				end, next = pos+i, pos+i+1
			} else {
				end, next = len(s), len(s)
			}
		} else {
			end, next, embedded = lineEnd(s, pos, sep)
		}
		line := s[pos:end]
		if isBlank(line) {
			if blankAt < 0 {
				blankAt = pos
			}
		} else {
			if blankAt >= 0 {
				p.add(Problem{Severity: SeverityWarning, Offset: blankAt, Code: ProblemEmptySegment,
					Message: "blank line between segments skipped"})
				blankAt = -1
			}
			block = append(block, p.segment(line, pos, embedded))
			for _, mk := range p.marks {
				if mk.at >= pos && mk.at < end {
					p.problems[mk.prob].Location = block[len(block)-1].locate(mk.at - pos)
				}
			}
		}
		pos = next
	}
	// Pointers are taken only now: appending above may have moved block.
	p.m.segs = make([]*Segment, len(block))
	for i := range block {
		p.m.segs[i] = &block[i]
	}
	p.checkHeader()
}

func isBlank(line string) bool {
	for i := 0; i < len(line); i++ {
		if line[i] != ' ' && line[i] != '\t' {
			return false
		}
	}
	return true
}

func (p *parser) add(pr Problem) { p.problems = append(p.problems, pr) }

// segment splits one segment line into fields and checks it.
func (p *parser) segment(line string, off int, embedded bool) Segment {
	d := p.m.d
	sep := d.Field
	i := strings.IndexByte(line, sep)
	name := line
	if i >= 0 {
		name = line[:i]
	}
	// A bare "MSH" line is still a header segment: its fields, once
	// added, follow MSH numbering, so reading it otherwise would not survive
	// a Set and re-parse.
	header := isHeaderName(name)
	first := len(p.fields)
	p.fields = append(p.fields, name)
	if i >= 0 {
		if header {
			p.fields = append(p.fields, line[3:4])
		}
		rest := line[i+1:]
		for {
			k := strings.IndexByte(rest, sep)
			if k < 0 {
				break
			}
			p.fields = append(p.fields, rest[:k])
			rest = rest[k+1:]
		}
		p.fields = append(p.fields, rest)
	}
	// The full slice expression caps each segment's view so that growing
	// one segment later (Set) reallocates instead of overwriting the next.
	seg := Segment{fields: p.fields[first:len(p.fields):len(p.fields)], d: d, header: header, seq: p.count(name)}
	loc := Location{Segment: name, SegmentIndex: seg.seq}

	if !validSegmentName(name) {
		p.add(Problem{Severity: SeverityError, Location: loc, Offset: off, Code: ProblemSegmentName,
			Message: fmt.Sprintf("segment ID %q is not three characters [A-Z][A-Z0-9][A-Z0-9]", truncate(name, 20))})
	}
	if name == "MSH" && seg.seq > 1 {
		p.add(Problem{Severity: SeverityWarning, Location: loc, Offset: off, Code: ProblemRepeatedMSH,
			Message: "another MSH inside the message; treated as an ordinary segment"})
	}
	hasEsc := strings.IndexByte(line, d.Escape) >= 0
	if !hasEsc && !embedded {
		return seg
	}
	foff := off + seg.fieldOffset(1) // advanced field by field below
	for f := 1; f < len(seg.fields); f++ {
		raw := seg.fields[f]
		if f > 1 {
			foff += len(seg.fields[f-1])
			if !header || f > 2 {
				foff++ // the separator
			}
		}
		if header && f <= 2 {
			continue
		}
		if embedded {
			if k := strings.IndexByte(raw, '\n'); k >= 0 {
				l := locateIn(raw, k, d, loc, f)
				p.add(Problem{Severity: SeverityWarning, Location: l, Offset: foff + k, Code: ProblemEmbeddedNewline,
					Message: "line feed inside a field kept as data (next line does not look like a segment)"})
			}
		}
		if hasEsc {
			checkEscapes(raw, d, func(is escapeIssue) {
				l := locateIn(raw, is.offset, d, loc, f)
				pr := Problem{Severity: SeverityWarning, Location: l, Offset: foff + is.offset, Code: ProblemBadEscape,
					Message: fmt.Sprintf("escape sequence %q not recognised; kept as written", truncate(is.seq, 40))}
				if is.kind == escUnsupported {
					pr.Severity, pr.Code = SeverityInfo, ProblemUnsupportedEscape
					pr.Message = fmt.Sprintf("escape sequence %q (charset switch or locally defined) kept as written", truncate(is.seq, 40))
				}
				p.add(pr)
			})
		}
	}
	return seg
}

// count returns the 1-based occurrence number of the next segment called
// name. A list beats a map here: messages have few distinct segment IDs.
func (p *parser) count(name string) int {
	for i := range p.seen[:p.nSeen] {
		if c := &p.seen[i]; c.name == name {
			c.n++
			return c.n
		}
	}
	for i := range p.seenMore {
		if c := &p.seenMore[i]; c.name == name {
			c.n++
			return c.n
		}
	}
	if p.nSeen < len(p.seen) {
		p.seen[p.nSeen] = nameCount{name, 1}
		p.nSeen++
	} else {
		p.seenMore = append(p.seenMore, nameCount{name, 1})
	}
	return 1
}

// checkHeader reports empty MSH fields that every message needs: without
// them a receiver cannot route (MSH-9), acknowledge (MSH-10) or interpret
// (MSH-11, MSH-12) the message.
func (p *parser) checkHeader() {
	msh := p.m.msh()
	for _, f := range [...]int{9, 10, 11, 12} {
		if msh.Field(f).IsEmpty() {
			p.add(Problem{Severity: SeverityWarning, Location: Location{Segment: "MSH", Field: f}, Offset: -1,
				Code: ProblemMissingHeaderField, Message: fmt.Sprintf("MSH-%d is empty", f)})
		}
	}
}

func isHeaderName(name string) bool {
	return name == "MSH" || name == "FHS" || name == "BHS"
}

func validSegmentName(name string) bool {
	return len(name) == 3 && name[0] >= 'A' && name[0] <= 'Z' && isUpperOrDigit(name[1]) && isUpperOrDigit(name[2])
}

func isUpperOrDigit(c byte) bool { return c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' }

// locate returns the Location of the byte at offset rel in the encoded
// segment: the segment itself for its ID, otherwise down to the
// subcomponent.
func (s *Segment) locate(rel int) Location {
	l := s.Location()
	off := len(s.fields[0])
	for f := 1; f < len(s.fields) && rel >= off; f++ {
		if !s.header || f > 2 {
			off++ // the separator before field f
		}
		end := off + len(s.fields[f])
		if rel < end {
			if s.header && f <= 2 {
				l.Field = f
				return l
			}
			return locateIn(s.fields[f], max(rel-off, 0), s.d, l, f)
		}
		off = end
	}
	return l
}

// locateIn turns an offset inside a raw field into a full Location by
// counting the delimiters before it.
func locateIn(raw string, off int, d Delimiters, seg Location, field int) Location {
	l := seg
	l.Field, l.Repetition, l.Component, l.Subcomponent = field, 1, 1, 1
	for i := 0; i < off && i < len(raw); i++ {
		switch raw[i] {
		case d.Repetition:
			l.Repetition++
			l.Component, l.Subcomponent = 1, 1
		case d.Component:
			l.Component++
			l.Subcomponent = 1
		case d.Subcomponent:
			l.Subcomponent++
		}
	}
	return l
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
