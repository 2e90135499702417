package hl7v2

import (
	"bytes"
	"strings"
	"time"
)

// HD is the hierarchic designator used for applications and facilities
// (MSH-3 to MSH-6): a local namespace ID, optionally with a universal ID
// such as an OID and its type. The values are decoded.
type HD struct {
	NamespaceID     string // HD.1, e.g. "EPIC"
	UniversalID     string // HD.2, e.g. "1.2.3"
	UniversalIDType string // HD.3, e.g. "ISO"
}

// IsZero reports whether all components are empty.
func (h HD) IsZero() bool { return h == HD{} }

// String renders the designator as written with default delimiters,
// "EPIC^1.2.3^ISO", trailing empty components dropped. It is meant for
// logs and routing keys; components are not escaped.
func (h HD) String() string { return joinTrim('^', h.NamespaceID, h.UniversalID, h.UniversalIDType) }

// MessageType is MSH-9: message code, trigger event and (v2.3.1+) message
// structure, e.g. {ADT A01 ADT_A01}.
type MessageType struct {
	Code      string // MSH-9.1, e.g. "ORU"
	Trigger   string // MSH-9.2, e.g. "R01"
	Structure string // MSH-9.3, e.g. "ORU_R01"; often empty before v2.3.1
}

// String renders the type as "ORU^R01^ORU_R01", trailing empties dropped.
func (t MessageType) String() string { return joinTrim('^', t.Code, t.Trigger, t.Structure) }

// Header is what the MSH segment says about a message: everything needed
// to store, route and acknowledge it without parsing the body. Values are
// decoded.
type Header struct {
	Delimiters           Delimiters
	SendingApplication   HD          // MSH-3
	SendingFacility      HD          // MSH-4
	ReceivingApplication HD          // MSH-5
	ReceivingFacility    HD          // MSH-6
	Timestamp            string      // MSH-7.1 as written; see ParseTime
	Type                 MessageType // MSH-9
	ControlID            string      // MSH-10
	ProcessingID         string      // MSH-11.1: P, T or D
	ProcessingMode       string      // MSH-11.2
	Version              string      // MSH-12.1, e.g. "2.5.1"
	AcceptAckType        string      // MSH-15: AL, NE, ER, SU or empty
	ApplicationAckType   string      // MSH-16: AL, NE, ER, SU or empty
	CharacterSets        []string    // MSH-18 repetitions, e.g. ["UNICODE UTF-8"]
}

// ReadHeader reads only the MSH segment of data: the fast path for an MLLP
// listener that must route, store and acknowledge a message before (or
// without) parsing it. It tolerates what Parse tolerates in front of and
// inside MSH and fails the same way (a *ParseError wrapping ErrNoMSH,
// ErrShortMSH or ErrBadDelimiters). Only the MSH line is copied.
//
// The values are UTF-8, decoded exactly as Parse with the same options
// would decode them (only WithCharset matters here), so the header equals
// Message.Header. MSH is nearly always ASCII; only when it is not does
// ReadHeader look at the rest of data, which Parse's choice of decoding
// depends on.
func ReadHeader(data []byte, opts ...Option) (Header, error) {
	start, _, err := findMSH(data)
	if err != nil {
		return Header{}, err
	}
	line := string(data[start:mshEnd(data, start)])
	d, _, perr := readDelimiters(line, start)
	if perr != nil {
		return Header{}, perr
	}
	if indexNonASCII(line, 0) >= 0 {
		cfg := newConfig(opts)
		if pl := planText(data, start, line, d, &cfg); pl.mode != keepText {
			line, _ = pl.decode(line, 0)
		}
	}
	var buf [19]string // MSH-0 .. MSH-18
	fields := append(buf[:0], "MSH", line[3:4])
	rest := line[4:]
	for len(fields) < len(buf) {
		k := strings.IndexByte(rest, d.Field)
		if k < 0 {
			fields = append(fields, rest)
			break
		}
		fields = append(fields, rest[:k])
		rest = rest[k+1:]
	}
	return headerFromFields(fields, d), nil
}

// mshEnd returns the end of the MSH segment starting at start. MSH almost
// always ends at the first CR, found at memchr speed; only an LF before it
// needs the general rule.
func mshEnd(data []byte, start int) int {
	end := len(data)
	if i := bytes.IndexByte(data[start:], '\r'); i >= 0 {
		end = start + i
	}
	if bytes.IndexByte(data[start:end], '\n') < 0 {
		return end
	}
	end, _, _ = lineEnd(data, start, data[min(start+3, len(data)-1)])
	return end
}

// firstSub returns the encoded first subcomponent of component c of the
// first repetition of a field in a single pass, cheaper than three nth
// calls on the short values of MSH.
func firstSub(raw string, d Delimiters, c int) string {
	comp, start := 1, 0
	for i := 0; i < len(raw); i++ {
		switch raw[i] {
		case d.Component:
			if comp == c {
				return raw[start:i]
			}
			comp++
			start = i + 1
		case d.Subcomponent, d.Repetition:
			if comp == c {
				return raw[start:i]
			}
			if raw[i] == d.Repetition {
				return ""
			}
		}
	}
	if comp == c {
		return raw[start:]
	}
	return ""
}

// Header returns the message header (from the first segment, which is MSH).
func (m *Message) Header() Header { return headerFromFields(m.msh().fields, m.d) }

// headerFromFields decodes an MSH segment given as encoded fields indexed
// by field number.
func headerFromFields(fields []string, d Delimiters) Header {
	comp := func(n, c int) string {
		if n >= len(fields) {
			return ""
		}
		return d.UnescapeValue(firstSub(fields[n], d, c))
	}
	hd := func(n int) HD { return HD{comp(n, 1), comp(n, 2), comp(n, 3)} }
	h := Header{
		Delimiters:           d,
		SendingApplication:   hd(3),
		SendingFacility:      hd(4),
		ReceivingApplication: hd(5),
		ReceivingFacility:    hd(6),
		Timestamp:            comp(7, 1),
		Type:                 MessageType{comp(9, 1), comp(9, 2), comp(9, 3)},
		ControlID:            comp(10, 1),
		ProcessingID:         comp(11, 1),
		ProcessingMode:       comp(11, 2),
		Version:              comp(12, 1),
		AcceptAckType:        comp(15, 1),
		ApplicationAckType:   comp(16, 1),
	}
	if len(fields) > 18 && fields[18] != "" {
		parts(fields[18], d.Repetition, func(_ int, rep string) bool {
			v, _ := nth(rep, d.Component, 1)
			h.CharacterSets = append(h.CharacterSets, d.UnescapeValue(v))
			return true
		})
	}
	return h
}

// msh returns the header segment; the zero Message gets an empty one so
// the typed accessors return "" instead of panicking.
func (m *Message) msh() *Segment {
	if len(m.segs) == 0 {
		return &Segment{fields: []string{"MSH"}, header: true}
	}
	return m.segs[0]
}

// mshValue returns the decoded MSH-n.c (first repetition, first subcomponent).
func (m *Message) mshValue(n, c int) string {
	v, _ := m.msh().lookup(Location{Field: n, Component: c}, true)
	return v
}

func (m *Message) mshHD(n int) HD { return HD{m.mshValue(n, 1), m.mshValue(n, 2), m.mshValue(n, 3)} }

// ControlID returns MSH-10, the message control ID an ACK refers to.
func (m *Message) ControlID() string { return m.mshValue(10, 1) }

// SendingApplication returns MSH-3 as an HD; HD.String gives the
// "EPIC^1.2.3^ISO" form.
func (m *Message) SendingApplication() HD { return m.mshHD(3) }

// SendingFacility returns MSH-4.
func (m *Message) SendingFacility() HD { return m.mshHD(4) }

// ReceivingApplication returns MSH-5.
func (m *Message) ReceivingApplication() HD { return m.mshHD(5) }

// ReceivingFacility returns MSH-6.
func (m *Message) ReceivingFacility() HD { return m.mshHD(6) }

// Type returns MSH-9.
func (m *Message) Type() MessageType {
	return MessageType{m.mshValue(9, 1), m.mshValue(9, 2), m.mshValue(9, 3)}
}

// Version returns MSH-12.1, the HL7 version ID such as "2.5.1".
func (m *Message) Version() string { return m.mshValue(12, 1) }

// ProcessingID returns MSH-11.1 (P production, T training, D debugging).
func (m *Message) ProcessingID() string { return m.mshValue(11, 1) }

// AcceptAckType returns MSH-15 (AL, NE, ER, SU or "").
func (m *Message) AcceptAckType() string { return m.mshValue(15, 1) }

// ApplicationAckType returns MSH-16 (AL, NE, ER, SU or "").
func (m *Message) ApplicationAckType() string { return m.mshValue(16, 1) }

// Timestamp parses MSH-7. A value without offset is read in the zone given
// by WithLocation (UTC by default).
func (m *Message) Timestamp() (time.Time, Precision, error) {
	loc := m.loc
	if loc == nil {
		loc = time.UTC
	}
	return ParseTimeIn(m.mshValue(7, 1), loc)
}

// joinTrim joins parts with sep after dropping trailing empty parts.
func joinTrim(sep byte, parts ...string) string {
	n := len(parts)
	for n > 0 && parts[n-1] == "" {
		n--
	}
	return strings.Join(parts[:n], string(sep))
}
