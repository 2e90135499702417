package hl7v2

import (
	"fmt"
	"strings"
)

// Group is one instance of a segment group of a message structure, such as
// one ORDER_OBSERVATION of an ORU_R01; the root group is named after the
// structure and holds MSH. Segments and Children are each in message order;
// how they interleave follows from the segments' positions in the message.
type Group struct {
	Name     string
	Segments []*Segment // the group's own segments
	Children []*Group   // nested group instances
}

// Segment returns the group's first own segment with the given ID, or nil.
// It does not look into child groups. Like the other helpers it may be
// called on a nil group, so lookups chain: g.First("PATIENT").Segment("PID").
func (g *Group) Segment(id string) *Segment {
	if g == nil {
		return nil
	}
	for _, s := range g.Segments {
		if s.Name() == id {
			return s
		}
	}
	return nil
}

// SegmentsNamed returns the group's own segments with the given ID, such
// as the NTEs of an OBSERVATION.
func (g *Group) SegmentsNamed(id string) []*Segment {
	if g == nil {
		return nil
	}
	var out []*Segment
	for _, s := range g.Segments {
		if s.Name() == id {
			out = append(out, s)
		}
	}
	return out
}

// All returns the groups with the given name below g, at any depth, in
// message order. It does not look inside a group it returns, so
// root.All("OBSERVATION") gives every OBSERVATION of every order.
func (g *Group) All(name string) []*Group {
	var out []*Group
	g.walk(name, func(c *Group) bool {
		out = append(out, c)
		return true
	})
	return out
}

// First returns the first group with the given name below g, or nil.
func (g *Group) First(name string) *Group {
	var found *Group
	g.walk(name, func(c *Group) bool {
		found = c
		return false
	})
	return found
}

// walk calls fn for each descendant named name, depth first, until fn
// returns false. It reports whether to go on.
func (g *Group) walk(name string, fn func(*Group) bool) bool {
	if g == nil {
		return true
	}
	for _, c := range g.Children {
		if c.Name == name {
			if !fn(c) {
				return false
			}
			continue
		}
		if !c.walk(name, fn) {
			return false
		}
	}
	return true
}

// String renders the tree for debugging, one group per line, indented,
// with its own segments: "ORU_R01: MSH\n  PATIENT_RESULT\n    PATIENT: PID".
func (g *Group) String() string {
	var b strings.Builder
	g.dump(&b, 0)
	return strings.TrimSuffix(b.String(), "\n")
}

func (g *Group) dump(b *strings.Builder, depth int) {
	if g == nil {
		return
	}
	b.WriteString(strings.Repeat("  ", depth))
	b.WriteString(g.Name)
	for i, s := range g.Segments {
		if i == 0 {
			b.WriteByte(':')
		}
		b.WriteByte(' ')
		b.WriteString(s.Location().String())
	}
	b.WriteByte('\n')
	for _, c := range g.Children {
		c.dump(b, depth+1)
	}
}

// Problem codes reported by Message.Groups.
const (
	// ProblemNoGrammar: there is no group grammar for the message's
	// structure; every segment is in the root group (Info).
	ProblemNoGrammar ProblemCode = "no-grammar"
	// ProblemStructureFromEvent: MSH-9.3 names a structure without a
	// grammar (often the event, as in ADT_A04), so the structure table's
	// entry for MSH-9.1/9.2 was used (Info).
	ProblemStructureFromEvent ProblemCode = "structure-from-event"
	// ProblemUnexpectedSegment: a segment has no place in the structure at
	// that point; it is kept in the innermost open group (Warning, or Info
	// for Z-segments, which are expected to be unexpected).
	ProblemUnexpectedSegment ProblemCode = "unexpected-segment"
	// ProblemMissingSegment: a group instance lacks a segment or group the
	// structure requires (Warning). The location is the group's first
	// segment.
	ProblemMissingSegment ProblemCode = "missing-segment"
)

// Groups arranges the segments into the segment groups of the message's
// structure (see Structure), for the structures with a grammar: ADT_A01
// (also A04, A08, A13), ADT_A02, ADT_A03, ADT_A05, ADT_A06, ADT_A09,
// ADT_A12, ADT_A17, ADT_A39 (A40–A42), ORU_R01, ORM_O01, OML_O21, VXU_V04,
// MDM_T01, MDM_T02 and SIU_S12. For other structures the root holds every
// segment and an Info problem says so.
//
// Matching is lenient and never drops a segment. A segment that opens a
// group is placed there even when required segments before it are missing
// (an order without ORC, resources without RGS), which is reported as
// missing. A segment with no place at that point (a Z-segment, a segment
// out of order) stays in the innermost group open when it appears, with a
// problem at its location; matching then goes on as if it were not there.
//
// Groups does not modify the message and allocates the tree in a few
// blocks; the problems are returned, not added to Problems.
func (m *Message) Groups() (*Group, []Problem) {
	structure := m.Structure()
	g, probs := grammars[structure], []Problem(nil)
	if g == nil {
		t := m.Type()
		if alt := StructureFor(t.Code, t.Trigger, m.Version()); alt != structure && grammars[alt] != nil {
			probs = append(probs, Problem{Severity: SeverityInfo, Location: Location{Segment: "MSH", Field: 9, Component: 3},
				Offset: -1, Code: ProblemStructureFromEvent,
				Message: fmt.Sprintf("MSH-9.3 %q has no group grammar; grouped as %s, the structure of %s^%s", structure, alt, t.Code, t.Trigger)})
			structure, g = alt, grammars[alt]
		}
	}
	if g == nil {
		root := &Group{Name: structure, Segments: m.Segments("")}
		name := structure
		if name == "" {
			name = "unknown (MSH-9 " + m.Type().String() + ")"
		}
		probs = append(probs, Problem{Severity: SeverityInfo, Location: Location{Segment: "MSH", Field: 9}, Offset: -1,
			Code: ProblemNoGrammar, Message: fmt.Sprintf("no group grammar for structure %s; segments returned flat", name)})
		return root, probs
	}
	gb := groupBuilder{segs: m.segs, problems: probs}
	gb.run(g)
	return gb.build(), gb.problems
}

// groupBuilder matches segments against a grammar in one pass, recording
// for each segment the group instance it belongs to; build then carves the
// tree out of three arrays instead of allocating group by group.
type groupBuilder struct {
	segs     []*Segment
	groups   []groupInfo // every group instance opened, named or not
	outs     []outInfo   // the named ones, which become Groups
	owner    []int       // owner[i] is the group index of segs[i]
	stack    []frame
	problems []Problem
}

type groupInfo struct {
	node   *gnode
	parent int // -1 for the root
	out    int // index in outs: its own, or its named ancestor's if unnamed
	first  int // index of the group's first segment, in or below it; -1 if none yet
}

// outInfo sizes one Group of the result.
type outInfo struct {
	name         string
	parent       int // index in outs, -1 for the root
	nsegs, nkids int
}

// frame is an open group instance.
type frame struct {
	group int    // index in groups
	pos   int    // index in the node's children of the last match, -1 before any
	seen  uint64 // children matched at least once
}

func (b *groupBuilder) run(root *gnode) {
	b.groups = make([]groupInfo, 0, len(b.segs)+1)
	b.outs = make([]outInfo, 0, len(b.segs)+1)
	b.owner = make([]int, len(b.segs))
	b.stack = make([]frame, 0, 8)
	b.open(root, -1)
	for i, s := range b.segs {
		b.place(i, s.Name())
	}
	b.closeTo(0)
	b.check(b.stack[0])
}

// open starts a new instance of node inside group parent.
func (b *groupBuilder) open(node *gnode, parent int) {
	g := groupInfo{node: node, parent: parent, first: -1}
	switch {
	case parent >= 0 && node.name == "":
		g.out = b.groups[parent].out
	default:
		po := -1
		if parent >= 0 {
			po = b.groups[parent].out
			b.outs[po].nkids++
		}
		g.out = len(b.outs)
		b.outs = append(b.outs, outInfo{name: node.name, parent: po})
	}
	b.groups = append(b.groups, g)
	b.stack = append(b.stack, frame{group: len(b.groups) - 1, pos: -1})
}

// place finds segment i a group, trying the innermost open group first
// and then its ancestors. The first pass opens groups only at their
// leading segments; the second, for what the first cannot place, also
// opens groups the segment anchors (see gnode.finish). What neither
// places stays in the innermost group, reported.
func (b *groupBuilder) place(i int, id string) {
	for _, deep := range [...]bool{false, true} {
		for lvl := len(b.stack) - 1; lvl >= 0; lvl-- {
			if k := b.next(b.stack[lvl], id, deep); k >= 0 {
				b.closeTo(lvl)
				b.enter(k, i, id)
				return
			}
		}
	}
	top := b.stack[len(b.stack)-1].group
	b.assign(top, i)
	s := b.segs[i]
	p := Problem{Severity: SeverityWarning, Location: s.Location(), Offset: -1, Code: ProblemUnexpectedSegment,
		Message: fmt.Sprintf("%s is not expected here in %s; kept in %s", s.Location(), b.groups[0].node.name, b.path(top))}
	if strings.HasPrefix(id, "Z") {
		p.Severity = SeverityInfo
		p.Message = fmt.Sprintf("Z-segment %s kept in %s", s.Location(), b.path(top))
	}
	b.problems = append(b.problems, p)
}

// next returns the index of the child of f's group that can take segment
// id, searching forward from the current position (the current child
// again only if it repeats), or -1. deep also accepts groups that have id
// as an anchor, not just at their start.
func (b *groupBuilder) next(f frame, id string, deep bool) int {
	kids := b.groups[f.group].node.kids
	for k := max(f.pos, 0); k < len(kids); k++ {
		c := kids[k]
		if k == f.pos && !c.repeat {
			continue
		}
		switch {
		case !c.group:
			if c.accepts(id) {
				return k
			}
		case deep && contains(c.anchors, id), !deep && contains(c.first, id):
			return k
		}
	}
	return -1
}

// enter records that child k of the innermost frame takes segment i,
// opening group instances down to the segment as needed.
func (b *groupBuilder) enter(k, i int, id string) {
	for {
		f := &b.stack[len(b.stack)-1]
		f.pos, f.seen = k, f.seen|1<<k
		c := b.groups[f.group].node.kids[k]
		if !c.group {
			b.assign(f.group, i)
			return
		}
		b.open(c, f.group)
		nf := b.stack[len(b.stack)-1]
		if k = b.next(nf, id, false); k < 0 {
			k = b.next(nf, id, true) // c starts with or anchors id, so this finds it
		}
	}
}

func (b *groupBuilder) assign(g, i int) {
	b.owner[i] = g
	b.outs[b.groups[g].out].nsegs++
	for ; g >= 0 && b.groups[g].first < 0; g = b.groups[g].parent {
		b.groups[g].first = i
	}
}

// closeTo closes the frames above level lvl.
func (b *groupBuilder) closeTo(lvl int) {
	for len(b.stack) > lvl+1 {
		b.check(b.stack[len(b.stack)-1])
		b.stack = b.stack[:len(b.stack)-1]
	}
}

// check reports the required children a closing group instance lacks.
func (b *groupBuilder) check(f frame) {
	info := b.groups[f.group]
	missing := info.node.required &^ f.seen
	for k, c := range info.node.kids {
		if missing&(1<<k) == 0 {
			continue
		}
		what := "segment " + c.name
		switch {
		case c.group:
			what = "group " + c.name
		case len(c.alts) > 1:
			what = "one of " + strings.Join(c.alts, ", ")
		}
		var loc Location
		if info.first >= 0 {
			loc = b.segs[info.first].Location()
		}
		b.problems = append(b.problems, Problem{Severity: SeverityWarning, Location: loc, Offset: -1, Code: ProblemMissingSegment,
			Message: fmt.Sprintf("required %s missing from %s", what, b.path(f.group))})
	}
}

// path names group g by its ancestry, e.g. "PATIENT_RESULT/ORDER_OBSERVATION(2)".
func (b *groupBuilder) path(g int) string {
	var parts []string
	for ; g > 0; g = b.groups[g].parent {
		if b.groups[g].node.name == "" {
			continue
		}
		n := 1 // which instance of this name under the same parent
		for j := g - 1; j > b.groups[g].parent; j-- {
			if b.groups[j].parent == b.groups[g].parent && b.groups[j].node == b.groups[g].node {
				n++
			}
		}
		name := b.groups[g].node.name
		if n > 1 {
			name = fmt.Sprintf("%s(%d)", name, n)
		}
		parts = append(parts, name)
	}
	if len(parts) == 0 {
		return "the root group"
	}
	for i, j := 0, len(parts)-1; i < j; i, j = i+1, j-1 {
		parts[i], parts[j] = parts[j], parts[i]
	}
	return strings.Join(parts, "/")
}

// build turns the recorded assignment into the tree. Groups were opened in
// message order, so appending each to its parent keeps Children in order.
func (b *groupBuilder) build() *Group {
	out := make([]Group, len(b.outs))
	segs := make([]*Segment, len(b.segs))
	kids := make([]*Group, len(b.outs)-1)
	so, ko := 0, 0
	for i, o := range b.outs {
		out[i].Name = o.name
		// Full slice expressions: a caller appending to one group's slice
		// must reallocate, not overwrite the next group's.
		out[i].Segments = segs[so : so : so+o.nsegs]
		out[i].Children = kids[ko : ko : ko+o.nkids]
		so, ko = so+o.nsegs, ko+o.nkids
		if o.parent >= 0 {
			p := &out[o.parent]
			p.Children = append(p.Children, &out[i])
		}
	}
	for i, s := range b.segs {
		g := &out[b.groups[b.owner[i]].out]
		g.Segments = append(g.Segments, s)
	}
	return &out[0]
}
