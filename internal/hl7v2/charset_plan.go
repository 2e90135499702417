package hl7v2

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"
)

// How Parse and ReadHeader turn input into UTF-8: planText decides from
// MSH-18, the connector setting and the bytes (see the package
// documentation for the rules), decode applies the decision.

// decodeMode says how Parse turns the input into UTF-8 text.
type decodeMode uint8

const (
	keepText   decodeMode = iota // ASCII or valid UTF-8: used as is
	decodeAll                    // every byte ≥ 0x80 decoded with a single-byte charset
	repairText                   // valid UTF-8 kept, each invalid byte decoded with a single-byte charset
)

// textPlan is the decision planText takes before anything is split.
type textPlan struct {
	mode     decodeMode
	cs       *charset // the single-byte charset of decodeAll and repairText
	name     string   // reported by Message.Charset
	problems []Problem
	// marks are problems about a place in the text whose Location is only
	// known once the segments are split: the problem's index in problems
	// and the offset in the decoded text.
	marks []mark
}

type mark struct{ prob, at int }

// planText decides how to decode s, whose MSH segment is line and starts
// at offset start (after any BOM and leading whitespace), from MSH-18, the
// connector setting and whether the bytes are valid UTF-8. It is shared by
// Parse and ReadHeader so that both read MSH the same way; the decision
// depends on the whole input, but decoding itself is byte-local, so
// ReadHeader can then decode the MSH line alone.
func planText[T ~string | ~[]byte](s T, start int, line string, d Delimiters, cfg *config) textPlan {
	var pl textPlan
	declared, name, ext, off18 := pl.readMSH18(line, start, d)
	if ext > 0 {
		// ISO 2022 code extensions switch charsets inside the text with
		// escape sequences; without support the switched runs are kept as
		// the bytes they are. Only raw ESC bytes make that visible damage.
		sev, what := SeverityInfo, "declared"
		if indexByte(s, start, 0x1b) >= 0 {
			sev, what = SeverityWarning, "used (ESC bytes present)"
		}
		pl.add(Problem{Severity: sev, Location: Location{Segment: "MSH", Field: 18, Repetition: 2}, Offset: off18,
			Code:    ProblemCharsetCodeExtension,
			Message: fmt.Sprintf("MSH-18 code extensions %s but not supported; the text they switch is kept as the bytes it is", what)})
	}
	conn := pl.connector(cfg)

	// single is the charset for text that is not UTF-8: the declared one,
	// else the connector's when MSH-18 does not say (ASCII says nothing
	// useful about bytes ≥ 0x80). Declared UTF-8 keeps single nil: invalid
	// bytes are then repaired one by one instead.
	var single *charset
	switch {
	case declared != nil && declared.kind == charsetSingleByte:
		single = declared
	case (declared == nil || declared.kind == charsetASCII) && conn != nil && conn.kind == charsetSingleByte:
		single = conn
	}
	fallback := charsetWindows1252
	if conn != nil && conn.kind == charsetSingleByte {
		fallback = conn
	}
	nonASCII, invalid := scanText(s, start)
	switch {
	case nonASCII < 0:
		pl.name = charsetASCIIDefault.name
		if declared != nil {
			pl.name = declared.name
		}
	case invalid < 0:
		pl.name = charsetUTF8Default.name
		switch {
		case single != nil:
			who := msh18Said(declared, name)
			if single == conn {
				who += " and the connector assumes " + conn.name
			}
			pl.addAt(nonASCII, Problem{Severity: SeverityWarning, Offset: nonASCII, Code: ProblemCharsetUTF8,
				Message: who + ", but the text is valid UTF-8; read as UTF-8"})
		case declared != nil && declared.kind == charsetUTF8, conn != nil && conn.kind == charsetUTF8:
		default:
			pl.addAt(nonASCII, Problem{Severity: SeverityInfo, Offset: nonASCII, Code: ProblemCharsetAssumed,
				Message: msh18Said(declared, name) + " but the text has non-ASCII characters; it is valid UTF-8 and read as such"})
		}
	case single != nil:
		pl.mode, pl.cs, pl.name = decodeAll, single, single.name
		if single == conn {
			pl.addAt(nonASCII, Problem{Severity: SeverityInfo, Offset: nonASCII, Code: ProblemCharsetAssumed,
				Message: msh18Said(declared, name) + "; non-ASCII text decoded as " + conn.name + ", the connector's character set"})
		}
	default:
		pl.mode, pl.cs, pl.name = repairText, fallback, fallback.name
		pl.addAt(invalid, Problem{Severity: SeverityWarning, Offset: invalid, Code: ProblemCharsetFallback,
			Message: fmt.Sprintf("%s but byte 0x%02X is not valid UTF-8; bytes that are not UTF-8 decoded as %s",
				msh18Said(declared, name), s[invalid], fallback.name)})
	}
	return pl
}

// readMSH18 reads MSH-18 from the MSH line at input offset start: the
// charset its first repetition names (nil when empty, unknown or
// unsupported, the latter two reported), that name, how many further
// non-empty repetitions (code extensions) it has, and its input offset.
func (pl *textPlan) readMSH18(line string, start int, d Delimiters) (cs *charset, name string, ext, off int) {
	raw, off := mshField(line, d.Field, 18)
	if raw == "" {
		return nil, "", 0, -1
	}
	off += start
	rep, _ := nth(raw, d.Repetition, 1)
	comp, _ := nth(rep, d.Component, 1)
	name = strings.TrimSpace(d.UnescapeValue(comp))
	parts(raw, d.Repetition, func(n int, r string) bool {
		if n > 1 && r != "" {
			ext++
		}
		return true
	})
	if name == "" {
		return nil, "", ext, off
	}
	loc := Location{Segment: "MSH", Field: 18}
	cs = lookupCharset(name)
	switch {
	case cs == nil:
		pl.add(Problem{Severity: SeverityWarning, Location: loc, Offset: off, Code: ProblemCharsetUnknown,
			Message: fmt.Sprintf("MSH-18 %q is not a known character set; read as if MSH-18 were empty", truncate(name, 40))})
	case cs.kind == charsetUnsupported:
		pl.add(Problem{Severity: SeverityWarning, Location: loc, Offset: off, Code: ProblemCharsetUnsupported,
			Message: fmt.Sprintf("MSH-18 %q is not supported; read as if MSH-18 were empty", cs.name)})
		cs = nil
	}
	return cs, name, ext, off
}

// connector returns the WithCharset charset, or nil (reported) when the
// name given there is unknown or unsupported.
func (pl *textPlan) connector(cfg *config) *charset {
	cs := cfg.charset
	if cfg.charsetName == "" || cs != nil && cs.kind != charsetUnsupported {
		return cs
	}
	code, why := ProblemCharsetUnknown, "is not a known character set"
	if cs != nil {
		code, why = ProblemCharsetUnsupported, "is not supported"
	}
	// Located at MSH-18, whose silence the connector setting stands in for.
	pl.add(Problem{Severity: SeverityWarning, Location: Location{Segment: "MSH", Field: 18}, Offset: -1, Code: code,
		Message: fmt.Sprintf("connector character set %q %s; ignored", truncate(cfg.charsetName, 40), why)})
	return nil
}

// msh18Said describes MSH-18 for problem messages. It is only called when
// there is a problem, so the common path builds no strings.
func msh18Said(declared *charset, name string) string {
	switch {
	case declared != nil:
		return "MSH-18 says " + declared.name
	case name != "":
		return fmt.Sprintf("MSH-18 %q is not usable", truncate(name, 40))
	}
	return "MSH-18 is empty"
}

func (pl *textPlan) add(p Problem) { pl.problems = append(pl.problems, p) }

// addAt adds a problem about the text at decoded offset at.
func (pl *textPlan) addAt(at int, p Problem) {
	pl.marks = append(pl.marks, mark{len(pl.problems), at})
	pl.add(p)
}

// mshField returns the raw MSH-n (n ≥ 3) of an MSH line and its offset in
// the line, or ("", -1) when the line is shorter.
func mshField(line string, sep byte, n int) (string, int) {
	if len(line) < 4 {
		return "", -1
	}
	i := 4 // MSH-2 starts after "MSH" and the separator
	for f := 2; f < n; f++ {
		k := strings.IndexByte(line[i:], sep)
		if k < 0 {
			return "", -1
		}
		i += k + 1
	}
	j := strings.IndexByte(line[i:], sep)
	if j < 0 {
		j = len(line) - i
	}
	return line[i : i+j], i
}

// scanText returns the offsets of the first byte ≥ 0x80 and of the first
// byte that does not start a valid UTF-8 sequence, from from on; -1 when
// there is none.
func scanText[T ~string | ~[]byte](s T, from int) (nonASCII, invalid int) {
	nonASCII = indexNonASCII(s, from)
	if nonASCII < 0 {
		return -1, -1
	}
	for i := nonASCII; i < len(s); {
		if s[i] < utf8.RuneSelf {
			i++
			continue
		}
		// A ≤4-byte conversion that does not escape uses a stack buffer.
		r, n := utf8.DecodeRuneInString(string(s[i:min(i+utf8.UTFMax, len(s))]))
		if r == utf8.RuneError && n == 1 {
			return nonASCII, i
		}
		i += n
	}
	return nonASCII, -1
}

// indexNonASCII returns the offset of the first byte ≥ 0x80 from from on,
// or -1. It tests sixteen bytes at a time (the loads combine into two
// 64-bit words): Parse runs it over every message.
func indexNonASCII[T ~string | ~[]byte](s T, from int) int {
	i := from
	for ; i+16 <= len(s); i += 16 {
		t := s[i : i+16]
		w := uint64(t[0]) | uint64(t[1])<<8 | uint64(t[2])<<16 | uint64(t[3])<<24 |
			uint64(t[4])<<32 | uint64(t[5])<<40 | uint64(t[6])<<48 | uint64(t[7])<<56
		w |= uint64(t[8]) | uint64(t[9])<<8 | uint64(t[10])<<16 | uint64(t[11])<<24 |
			uint64(t[12])<<32 | uint64(t[13])<<40 | uint64(t[14])<<48 | uint64(t[15])<<56
		if w&0x8080808080808080 != 0 {
			break
		}
	}
	for ; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return i
		}
	}
	return -1
}

func indexByte[T ~string | ~[]byte](s T, from int, c byte) int {
	for i := from; i < len(s); i++ {
		if s[i] == c {
			return i
		}
	}
	return -1
}

// unit returns the input bytes the text at s[i] (a byte ≥ 0x80) takes and
// its UTF-8 replacement. decode and inputOffsets share it, so offsets map
// back exactly as the text was built.
func (pl *textPlan) unit(s string, i int, t *[128]string) (int, string) {
	if pl.mode == repairText {
		if r, n := utf8.DecodeRuneInString(s[i:]); r != utf8.RuneError || n > 1 {
			return n, s[i : i+n]
		}
	}
	return 1, t[s[i]-0x80]
}

// undefinedBytes reports the bytes decode turned into U+FFFD because the
// charset does not define them.
type undefinedBytes struct {
	count, in, out int // how many; input and decoded offset of the first
}

// decode returns s with s[start:] turned into UTF-8 per the plan (s[:start]
// is only a BOM and whitespace). The result is sized exactly, so decoding
// costs one allocation.
func (pl *textPlan) decode(s string, start int) (string, undefinedBytes) {
	t := pl.cs.table()
	n := len(s)
	for i := indexNonASCII(s, start); i >= 0; i = indexNonASCII(s, i) {
		in, text := pl.unit(s, i, t)
		n += len(text) - in
		i += in
	}
	var b strings.Builder
	b.Grow(n)
	b.WriteString(s[:start])
	var u undefinedBytes
	for i := start; i < len(s); {
		j := indexNonASCII(s, i)
		if j < 0 {
			b.WriteString(s[i:])
			break
		}
		b.WriteString(s[i:j])
		in, text := pl.unit(s, j, t)
		if in == 1 && text == "\uFFFD" {
			if u.count == 0 {
				u.in, u.out = j, b.Len()
			}
			u.count++
		}
		b.WriteString(text)
		i = j + in
	}
	return b.String(), u
}

// inputOffsets rewrites the Offset of each problem from an offset in the
// decoded text to one in the input s, pointing at the start of the input
// bytes of the character it falls in. Offsets before start, or negative,
// are left alone: the prefix is not decoded.
func (pl *textPlan) inputOffsets(s string, start int, probs []Problem) {
	idx := make([]int, 0, len(probs))
	for k := range probs {
		if probs[k].Offset >= start {
			idx = append(idx, k)
		}
	}
	if len(idx) == 0 {
		return
	}
	// Walk the input once, in offset order.
	slices.SortFunc(idx, func(a, b int) int { return cmp.Compare(probs[a].Offset, probs[b].Offset) })
	t := pl.cs.table()
	i, o := start, start
	for _, k := range idx {
		x := probs[k].Offset
		for i < len(s) {
			in, out := 1, 1
			if s[i] >= utf8.RuneSelf {
				var text string
				in, text = pl.unit(s, i, t)
				out = len(text)
			}
			if o+out > x {
				break
			}
			i, o = i+in, o+out
		}
		probs[k].Offset = i
	}
}
