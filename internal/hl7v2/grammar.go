package hl7v2

import (
	"fmt"
	"strings"
)

// A grammar is a message structure written in the abstract message syntax
// of the HL7 standard, with groups named:
//
//	SEG          required segment          [SEG]    optional
//	{SEG}        required, repeating       [{SEG}]  optional, repeating
//	NAME( ... )  segment group; takes the same brackets as a segment
//	( ... )      unnamed group: matched as a unit, its segments and groups
//	             belong to the enclosing group in the result
//	<A|B|C>      exactly one of the segments (ORM's ORDER_DETAIL)
//
// Each grammar is the union of the structure across v2.3.1–v2.8 (and the
// v2.9 layout the HL7 v2-to-FHIR mapping tables use, where that only adds
// segments): group names and nesting follow v2.5.1, segments later
// versions added are optional extras in their place, and a segment is
// required only when every version requires it. So one grammar reads every
// version without false complaints, at the price of accepting some
// combinations no single version allows.
//
// Known simplifications: v2.9 wraps a few segments with their trailing PRT
// in groups (ADT's OBSERVATION and NEXT_OF_KIN, ORU's COMMON_ORDER and
// SPECIMEN_OBSERVATION); here they stay flat as in v2.5.1, with PRT as an
// optional neighbour. ORU's v2.9 COMMON_ORDER is an unnamed group, so ORC
// stays a segment of ORDER_OBSERVATION as in v2.5.1 while ORDER_DOCUMENT
// can still only follow an ORC. OML_O21 omits PRIOR_RESULT: its content
// cannot be told from the next ORDER once it has started, so prior
// results read as further orders and their PV1/AL1 are reported.
var grammarText = map[string]string{
	"ADT_A01": adtA01,
	// ADT_A05 is ADT_A01 without the optional PDA; sharing the grammar
	// only means a PDA would be accepted there too.
	"ADT_A05": adtA01,
	"ADT_A02": `MSH [{ARV}] [{SFT}] [UAC] EVN PID [PD1] [{ARV}] [{ROL}] [{PRT}] PV1 [PV2] [{ARV}] [{ROL}] [{PRT}]
		[{DB1}] [{OBX}] [{PRT}] [PDA]`,
	"ADT_A03": `MSH [{ARV}] [{SFT}] [UAC] EVN PID [PD1] [{ARV}] [{ROL}] [{PRT}] [{NK1}] PV1 [PV2] [{ARV}] [{ROL}] [{PRT}]
		[{DB1}] [{AL1}] [{DG1}] [DRG] [{PROCEDURE( PR1 [{ROL}] [{PRT}] )}] [{OBX}] [{GT1}]
		[{INSURANCE( ` + adtInsurance + ` )}] [ACC] [PDA]`,
	"ADT_A06": `MSH [{ARV}] [{SFT}] [UAC] EVN PID [PD1] [{ARV}] [{ROL}] [{PRT}] [MRG] [{NK1}] PV1 [PV2] [{ARV}] [{ROL}] [{PRT}]
		[{DB1}] [{OBX}] [{AL1}] [{DG1}] [DRG] [{PROCEDURE( PR1 [{ROL}] [{PRT}] )}] [{GT1}]
		[{INSURANCE( ` + adtInsurance + ` )}] [ACC] [UB1] [UB2]`,
	// ADT_A12 has the same layout as ADT_A09 (it was ADT_A09 before v2.5).
	"ADT_A09": adtA09,
	"ADT_A12": adtA09,
	"ADT_A17": `MSH [{SFT}] [UAC] EVN PID [PD1] PV1 [PV2] [{DB1}] [{OBX}] PID [PD1] PV1 [PV2] [{DB1}] [{OBX}]`,
	"ADT_A39": `MSH [{SFT}] [UAC] EVN {PATIENT( PID [PD1] MRG [PV1] )}`,
	"ORU_R01": `MSH [{SFT}] [UAC]
		{PATIENT_RESULT(
			[PATIENT( PID [PD1] [{PRT}] [{NTE}] [{NK1}] [{ARV}] [{PATIENT_OBSERVATION( OBX [{PRT}] )}]
				[VISIT( PV1 [PV2] [{PRT}] )] )]
			{ORDER_OBSERVATION( [( ORC [{PRT}] [ORDER_DOCUMENT( OBX [{PRT}] TXA )] )] OBR [{NTE}] [{PRT}]
				[{TIMING_QTY( TQ1 [{TQ2}] )}] [CTD] [{OBSERVATION( OBX [{PRT}] [{NTE}] )}] [{FT1}] [{CTI}]
				[{SPECIMEN( SPM [{OBX}] [{PRT}] )}] )}
		)}
		[DSC]`,
	"ORM_O01": `MSH [{SFT}] [{NTE}]
		[PATIENT( PID [PD1] [{NTE}] [PATIENT_VISIT( PV1 [PV2] )] [{INSURANCE( IN1 [IN2] [IN3] )}] [GT1] [{AL1}] )]
		{ORDER( ORC
			[ORDER_DETAIL( <OBR|RQD|RQ1|RXO|ODS|ODT> [{NTE}] [CTD] [{DG1}] [{OBSERVATION( OBX [{NTE}] )}] )]
			[{FT1}] [{CTI}] [BLG] )}`,
	"OML_O21": `MSH [{SFT}] [UAC] [{NTE}]
		[PATIENT( PID [PD1] [{PRT}] [{NTE}] [{NK1}] [{ARV}] [PATIENT_VISIT( PV1 [PV2] [{PRT}] )]
			[{INSURANCE( IN1 [IN2] [IN3] )}] [GT1] [{AL1}] )]
		{ORDER( ORC [{PRT}] [{TIMING( TQ1 [{TQ2}] )}]
			[OBSERVATION_REQUEST( OBR [TCD] [{NTE}] [{PRT}] [CTD] [{DG1}] [{OBSERVATION( OBX [{PRT}] [TCD] [{NTE}] )}]
				[{SPECIMEN( SPM [{OBX}] [{PRT}] [{CONTAINER( SAC [{OBX}] [{PRT}] )}] )}] )]
			[{FT1}] [{CTI}] [BLG] )}`,
	// ORC became required in VXU's ORDER in v2.5; older versions and many
	// registries' senders omit it.
	"VXU_V04": `MSH [{SFT}] [UAC] PID [PD1] [{NK1}] [{ARV}] [PATIENT_VISIT( PV1 [PV2] [{ARV}] )] [{GT1}]
		[{INSURANCE( IN1 [IN2] [IN3] )}] [{PERSON_OBSERVATION( OBX [{PRT}] [{NTE}] )}]
		[{ORDER( [ORC] [{PRT}] [{TIMING( TQ1 [{TQ2}] )}] RXA [RXR] [{OBSERVATION( OBX [{PRT}] [{NTE}] )}] )}]`,
	"MDM_T01": mdmCommon,
	"MDM_T02": mdmCommon + ` {OBSERVATION( OBX [{NTE}] )}`,
	"SIU_S12": `MSH [{SFT}] [UAC] SCH [{TQ1}] [{NTE}] [{PATIENT( PID [PD1] [PV1] [PV2] [{OBX}] [{DG1}] )}]
		{RESOURCES( RGS [{SERVICE( AIS [{NTE}] )}] [{GENERAL_RESOURCE( AIG [{NTE}] )}]
			[{LOCATION_RESOURCE( AIL [{NTE}] )}] [{PERSONNEL_RESOURCE( AIP [{NTE}] )}] )}`,
}

const (
	adtA01 = `MSH [{ARV}] [{SFT}] [UAC] EVN PID [PD1] [{OH1}] [{OH2}] [OH3] [{OH4}] [{ARV}] [{ROL}] [{PRT}] [{NK1}]
		PV1 [PV2] [{ARV}] [{ROL}] [{PRT}] [{DB1}] [{OBX}] [{PRT}] [{AL1}] [{IAM}] [{DG1}] [DRG]
		[{PROCEDURE( PR1 [{ROL}] [{PRT}] )}] [{GT1}]
		[{INSURANCE( ` + adtInsurance + ` )}] [ACC] [UB1] [UB2] [PDA]`
	adtInsurance = `IN1 [IN2] [{IN3}] [{ROL}] [{PRT}] [{AUTHORIZATION( AUT [{PRT}] )}] [{REFERRAL( RF1 [{PRT}] )}]`
	adtA09       = `MSH [{ARV}] [{SFT}] [UAC] EVN PID [PD1] PV1 [PV2] [{DB1}] [{OBX}] [{PRT}] [{DG1}]`
	mdmCommon    = `MSH [{SFT}] [UAC] EVN PID PV1 [{COMMON_ORDER( ORC [{TIMING( TQ1 [{TQ2}] )}] OBR [{NTE}] )}] TXA [{CON}]`
)

// grammars holds the parsed grammars by structure ID. A malformed grammar
// text panics at package initialisation, so any test run catches it.
var grammars = func() map[string]*gnode {
	m := make(map[string]*gnode, len(grammarText))
	for name, text := range grammarText {
		m[name] = mustGrammar(name, text)
	}
	return m
}()

// gnode is a segment, a choice of segments, or a group in a grammar.
type gnode struct {
	name     string   // segment ID or group name; "A|B" for a choice
	alts     []string // the segment IDs a segment or choice node accepts
	kids     []*gnode // group children, in order
	group    bool
	optional bool
	repeat   bool
	// For groups: the segment IDs that can open an instance (the first
	// segments up to and including the first required child), the anchors
	// (see finish), and which children are required.
	first    []string
	anchors  []string
	required uint64
}

func (n *gnode) accepts(id string) bool { return contains(n.alts, id) }

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func mustGrammar(name, text string) *gnode {
	p := grammarParser{text: text}
	root := &gnode{name: name, group: true}
	root.kids = p.list()
	if p.err == nil && p.pos < len(p.text) {
		p.fail("unexpected %q", p.text[p.pos:min(p.pos+10, len(p.text))])
	}
	if p.err == nil {
		p.err = root.finish()
	}
	if p.err != nil {
		panic(fmt.Sprintf("hl7v2: grammar %s: %v", name, p.err))
	}
	return root
}

// finish computes the derived sets of a group and its descendants.
//
// A group's anchors are the segments required within their own (possibly
// nested) group. When a segment cannot be placed normally, Groups may open
// a group whose anchor it is, as if the segments before it were missing:
// an OBR without its ORC still starts an ORDER. Optional segments are not
// anchors, so one out of place (an NK1 after PV1) is reported where it is
// instead of starting a new patient.
func (n *gnode) finish() error {
	if len(n.kids) > 64 {
		return fmt.Errorf("group %s has %d children, at most 64 fit the bit set", n.name, len(n.kids))
	}
	if len(n.kids) == 0 {
		return fmt.Errorf("group %s is empty", n.name)
	}
	opening := true
	for i, k := range n.kids {
		if k.group {
			if err := k.finish(); err != nil {
				return err
			}
		}
		ids := k.alts
		if k.group {
			ids = k.first
		}
		if opening {
			n.first = appendNew(n.first, ids...)
		}
		switch {
		case k.group:
			n.anchors = appendNew(n.anchors, k.anchors...)
		case !k.optional:
			n.anchors = appendNew(n.anchors, k.alts...)
		}
		if !k.optional {
			n.required |= 1 << i
			opening = false
		}
	}
	return nil
}

func appendNew(list []string, ids ...string) []string {
	for _, id := range ids {
		if !contains(list, id) {
			list = append(list, id)
		}
	}
	return list
}

// grammarParser reads the notation documented at grammarText.
type grammarParser struct {
	text string
	pos  int
	err  error
}

func (p *grammarParser) fail(format string, args ...any) {
	if p.err == nil {
		p.err = fmt.Errorf("at %d: %s", p.pos, fmt.Sprintf(format, args...))
	}
}

func (p *grammarParser) skipSpace() {
	for p.pos < len(p.text) && strings.IndexByte(" \t\r\n", p.text[p.pos]) >= 0 {
		p.pos++
	}
}

// peek returns the next non-space byte, or 0 at the end.
func (p *grammarParser) peek() byte {
	p.skipSpace()
	if p.pos == len(p.text) {
		return 0
	}
	return p.text[p.pos]
}

func (p *grammarParser) expect(c byte) {
	if p.peek() != c {
		p.fail("want %q", c)
		return
	}
	p.pos++
}

// list reads items until ')' or the end.
func (p *grammarParser) list() []*gnode {
	var out []*gnode
	for p.err == nil {
		if c := p.peek(); c == 0 || c == ')' {
			return out
		}
		out = append(out, p.item())
	}
	return out
}

// item reads one element with its brackets.
func (p *grammarParser) item() *gnode {
	optional, repeat := false, false
	if p.peek() == '[' {
		optional = true
		p.pos++
	}
	if p.peek() == '{' {
		repeat = true
		p.pos++
	}
	n := p.elem()
	if repeat {
		p.expect('}')
	}
	if optional {
		p.expect(']')
	}
	n.optional, n.repeat = optional, repeat
	return n
}

func (p *grammarParser) elem() *gnode {
	if p.peek() == '<' {
		p.pos++
		n := &gnode{}
		for p.err == nil {
			n.alts = append(n.alts, p.segmentID())
			if p.peek() != '|' {
				break
			}
			p.pos++
		}
		p.expect('>')
		n.name = strings.Join(n.alts, "|")
		return n
	}
	if p.peek() == '(' { // unnamed group
		p.pos++
		n := &gnode{group: true, kids: p.list()}
		p.expect(')')
		return n
	}
	id := p.ident()
	if p.peek() != '(' {
		if len(id) != 3 {
			p.fail("segment ID %q is not three characters", id)
		}
		return &gnode{name: id, alts: []string{id}}
	}
	p.pos++
	n := &gnode{name: id, group: true, kids: p.list()}
	p.expect(')')
	return n
}

func (p *grammarParser) segmentID() string {
	id := p.ident()
	if len(id) != 3 {
		p.fail("segment ID %q is not three characters", id)
	}
	return id
}

func (p *grammarParser) ident() string {
	p.skipSpace()
	start := p.pos
	for p.pos < len(p.text) && (isUpperOrDigit(p.text[p.pos]) || p.text[p.pos] == '_') {
		p.pos++
	}
	if p.pos == start {
		p.fail("want a segment ID or group name")
	}
	return p.text[start:p.pos]
}
