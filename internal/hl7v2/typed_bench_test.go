package hl7v2

import (
	"os"
	"path/filepath"
	"testing"
)

// typedBenchPaths are the ADT fields a FHIR mapper reads (Patient,
// Encounter, MessageHeader); bench/hl7/gobench reads the same set.
var typedBenchPaths = []string{
	"MSH-9", "MSH-9.2", "MSH-10", "MSH-7",
	"EVN-2",
	"PID-3(1).1", "PID-3(1).4.1", "PID-5.1", "PID-5.2", "PID-7", "PID-8",
	"PID-11.1", "PID-11.3", "PID-11.5", "PID-13", "PID-18",
	"PV1-2", "PV1-3.1", "PV1-7.1", "PV1-19", "PV1-44",
}

var typedBenchFiles = []struct{ name, file string }{
	{"ADT_A01_2KB", "bench/adt_a01.hl7"},                 // microsoft/FHIR-Converter ADT-A01-02, CR terminators
	{"ADT_A01_1KB", "messages/rethink-adt-a01-full.hl7"}, // rethinkhealth/hl7v2 qa-fixtures, a typical admission, LF terminators
}

// BenchmarkParseTypedADT is what an ADT consumer pays per message: Parse,
// then Get on ~20 fields as a mapper would, and ParseTime on the birth
// date. The msgs/s metric is for one goroutine; run with -cpu 1 for the
// one-core figure `make bench-hl7` reports.
func BenchmarkParseTypedADT(b *testing.B) {
	for _, in := range typedBenchFiles {
		data, err := os.ReadFile(filepath.Join("testdata", in.file))
		if err != nil {
			b.Fatal(err)
		}
		b.Run(in.name, func(b *testing.B) {
			m, err := Parse(data)
			if err != nil {
				b.Fatal(err)
			}
			if m.Get("PID-5.1") == "" || m.Get("PID-7") == "" {
				b.Fatalf("%s: not a populated ADT (PID-5.1 %q, PID-7 %q)", in.file, m.Get("PID-5.1"), m.Get("PID-7"))
			}
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			var sink int
			for b.Loop() {
				m, err := Parse(data)
				if err != nil {
					b.Fatal(err)
				}
				for i, p := range typedBenchPaths {
					v := m.Get(p)
					sink += len(v)
					if i == 9 { // PID-7
						if t, _, err := ParseTime(v); err == nil {
							sink += t.Year()
						}
					}
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
			if sink == 0 {
				b.Fatal("no value read")
			}
		})
	}
}

// BenchmarkParseTypedADTCompiled is BenchmarkParseTypedADT with the paths
// compiled once (CompilePath) and read with GetPath, as a mapper that
// keeps its paths in package variables does.
func BenchmarkParseTypedADTCompiled(b *testing.B) {
	paths := make([]Path, len(typedBenchPaths))
	for i, p := range typedBenchPaths {
		paths[i] = MustPath(p)
	}
	for _, in := range typedBenchFiles {
		data, err := os.ReadFile(filepath.Join("testdata", in.file))
		if err != nil {
			b.Fatal(err)
		}
		b.Run(in.name, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			var sink int
			for b.Loop() {
				m, err := Parse(data)
				if err != nil {
					b.Fatal(err)
				}
				for i, p := range paths {
					v := m.GetPath(p)
					sink += len(v)
					if i == 9 { // PID-7
						if t, _, err := ParseTime(v); err == nil {
							sink += t.Year()
						}
					}
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
			if sink == 0 {
				b.Fatal("no value read")
			}
		})
	}
}
