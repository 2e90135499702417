package mapping

import "strconv"

// mapSpecimens maps the group's SPM segments (IG SPM[Specimen]) and returns their references.
// A Specimen is keyed under SystemV2Specimen on its id and its type: "<id system>|<id>|<SPM-4
// system>|<SPM-4 code>", the id being the placer id (SPM-2.1), else the filler id (SPM-2.2,
// which is also the accession identifier). Senders give one id to the parts of a collection
// that differ in type (a dried blood spot and a venous sample of one kit), which are two
// specimens; the type is in the key always, not only when a message happens to carry both,
// so that every message keys a specimen alike. A specimen without SPM-2 is keyed
// "<order key system>|<order key value>|<SPM-1 set id>". It is created, not updated: a
// specimen's facts do not change with later results.
func mapSpecimens(b *Builder, g *orderGroup) []*Reference {
	var refs []*Reference
	for i, spm := range g.specs {
		s := &specimen{ResourceType: "Specimen", Meta: b.Meta("Specimen"), Subject: b.Patient(), Identifier: make([]Identifier, 0, 3)}
		id2 := FieldValue(spm, 2)
		placer, hasPlacer := EI(id2.Sub(1), b.Opts.ids())
		filler, hasFiller := EI(id2.Sub(2), b.Opts.ids())
		typ, hasType := CWE(FieldValue(spm, 4))
		var key Identifier
		switch {
		case hasPlacer:
			placer.Type = typePlacer
			sys, code := conceptKey(typ)
			key = Identifier{System: SystemV2Specimen, Value: placer.System + "|" + placer.Value + "|" + sys + "|" + code}
		case hasFiller:
			sys, code := conceptKey(typ)
			key = Identifier{System: SystemV2Specimen, Value: filler.System + "|" + filler.Value + "|" + sys + "|" + code}
		default:
			set := FieldValue(spm, 1).Get(1)
			if set == "" {
				set = strconv.Itoa(i + 1)
			}
			key = Identifier{System: SystemV2Specimen, Value: g.resKey.System + "|" + g.resKey.Value + "|" + set}
		}
		if hasPlacer {
			s.Identifier = append(s.Identifier, placer)
		}
		if hasFiller {
			filler.Type = typeFiller
			s.Identifier = append(s.Identifier, filler)
			acc := filler
			acc.Type = nil
			s.AccessionIdentifier = &acc
		}
		s.Identifier = append(s.Identifier, key)
		if hasType {
			s.Type = &typ
		} else {
			s.Type = &CodeableConcept{Extension: Absent()} // US Core: type must-support
		}
		if g.sr != nil {
			s.Request = []*Reference{g.sr}
		}
		col := &specimenCollect{}
		start := b.DateTime(spm, 17, FieldValue(spm, 17).Sub(1).Get(1))
		end := b.DateTime(spm, 17, FieldValue(spm, 17).Sub(2).Get(1))
		if end == "" || end == start {
			col.CollectedDateTime = start
		} else {
			col.CollectedPeriod = period(start, end)
		}
		if q, ok := CQ(FieldValue(spm, 12)); ok {
			col.Quantity = q
		}
		if cc, ok := CWE(FieldValue(spm, 7)); ok {
			col.Method = &cc
		}
		if cc, ok := CWE(FieldValue(spm, 8)); ok {
			col.BodySite = &cc
		}
		if *col != (specimenCollect{}) {
			s.Collection = col
		}
		s.ReceivedTime = b.DateTime(spm, 18, FieldValue(spm, 18).Get(1))
		for v := range Repetitions(spm, 24) {
			if cc, ok := CWE(v); ok {
				s.Condition = append(s.Condition, *withTable(&cc, "0493"))
			}
		}
		if t := FieldValue(spm, 14).Get(1); t != "" {
			s.Note = []annotation{{Text: t}}
		}
		refs = append(refs, b.Create("Specimen", key, s))
	}
	return refs
}
