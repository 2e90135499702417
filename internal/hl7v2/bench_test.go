package hl7v2

import (
	"bytes"
	"testing"
	"time"
)

func benchInputs(b *testing.B) []struct {
	name string
	data []byte
} {
	return []struct {
		name string
		data []byte
	}{
		{"ORU_R01_10KB", readFixture(b, "bench/oru_r01_cbc.hl7")},
		{"ADT_A01_2KB", readFixture(b, "bench/adt_a01.hl7")},
	}
}

func BenchmarkParse(b *testing.B) {
	for _, in := range benchInputs(b) {
		b.Run(in.name, func(b *testing.B) {
			b.SetBytes(int64(len(in.data)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Parse(in.data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkParseAndWalk parses and then decodes every leaf, the cost a
// full mapping pass pays on top of Parse.
func BenchmarkParseAndWalk(b *testing.B) {
	for _, in := range benchInputs(b) {
		b.Run(in.name, func(b *testing.B) {
			b.SetBytes(int64(len(in.data)))
			b.ReportAllocs()
			for b.Loop() {
				m, _ := Parse(in.data)
				for _, s := range m.segs {
					for _, f := range s.Fields() {
						for _, r := range f.Repetitions() {
							for _, c := range r.Components() {
								for range c.Subcomponents() {
								}
							}
						}
					}
				}
			}
		})
	}
}

func BenchmarkReadHeader(b *testing.B) {
	for _, in := range benchInputs(b) {
		b.Run(in.name, func(b *testing.B) {
			b.SetBytes(int64(len(in.data)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := ReadHeader(in.data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkEncode(b *testing.B) {
	data := readFixture(b, "bench/oru_r01_cbc.hl7")
	m, _ := Parse(data)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		_ = m.Encode()
	}
}

func BenchmarkGet(b *testing.B) {
	m, _ := Parse(readFixture(b, "bench/oru_r01_cbc.hl7"))
	b.ReportAllocs()
	for b.Loop() {
		_ = m.Get("OBX(10)-3.2")
	}
}

func BenchmarkGetPath(b *testing.B) {
	m, _ := Parse(readFixture(b, "bench/oru_r01_cbc.hl7"))
	p := MustPath("OBX(10)-3.2")
	b.ReportAllocs()
	for b.Loop() {
		_ = m.GetPath(p)
	}
}

// BenchmarkParseTime parses a PID-7 with a half-hour UTC offset, which
// time.FixedZone alone does not cache.
func BenchmarkParseTime(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := ParseTime("198808181126+0530"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkBuildAck(b *testing.B) {
	h, _ := ReadHeader(readFixture(b, "bench/oru_r01_cbc.hl7"))
	in := AckInput{Code: CommitAccept, ControlID: "ACK1", Now: time.Now()}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := BuildAck(h, in); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseLatin1 is BenchmarkParse on the 10 KB ORU turned Latin-1
// (about 2% non-ASCII bytes): declared in MSH-18, and undeclared, where
// the windows-1252 fallback repairs it and reports a problem.
func BenchmarkParseLatin1(b *testing.B) {
	declared := latin1Fixture(b)
	undeclared := bytes.Replace(declared, []byte("|8859/1|"), []byte("||"), 1)
	for _, in := range []struct {
		name string
		data []byte
	}{{"declared", declared}, {"undeclared", undeclared}} {
		b.Run(in.name, func(b *testing.B) {
			b.SetBytes(int64(len(in.data)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Parse(in.data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkGroupsORU measures Groups alone on parsed ORUs: the 10 KB
// CBC (one order, 30-odd observations) and the v2.9-style sample.
func BenchmarkGroupsORU(b *testing.B) {
	for _, in := range []struct{ name, file string }{
		{"CBC_10KB", "bench/oru_r01_cbc.hl7"},
		{"v29_sample", "messages/msft-oru-r01.hl7"},
	} {
		m, err := Parse(readFixture(b, in.file))
		if err != nil {
			b.Fatal(err)
		}
		b.Run(in.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if g, _ := m.Groups(); g == nil {
					b.Fatal("no tree")
				}
			}
		})
	}
}
