package hl7v2

import (
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParsePath(t *testing.T) {
	tests := []struct {
		in   string
		want Location
	}{
		{"PID", Location{Segment: "PID"}},
		{"PID-3", Location{Segment: "PID", Field: 3}},
		{"PID-3(2)", Location{Segment: "PID", Field: 3, Repetition: 2}},
		{"PID-3(2).1", Location{Segment: "PID", Field: 3, Repetition: 2, Component: 1}},
		{"OBX(3)-5", Location{Segment: "OBX", SegmentIndex: 3, Field: 5}},
		{"PID-5.1.2", Location{Segment: "PID", Field: 5, Component: 1, Subcomponent: 2}},
		{"PID-5-1-2", Location{Segment: "PID", Field: 5, Component: 1, Subcomponent: 2}},
		{"MSH-9.1", Location{Segment: "MSH", Field: 9, Component: 1}},
		{"Z01(12)-100(3).4.5", Location{Segment: "Z01", SegmentIndex: 12, Field: 100, Repetition: 3, Component: 4, Subcomponent: 5}},
	}
	for _, tt := range tests {
		got, err := ParsePath(tt.in)
		if err != nil {
			t.Errorf("ParsePath(%q): %v", tt.in, err)
			continue
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("ParsePath(%q) (-want +got):\n%s", tt.in, diff)
		}
	}
	for _, in := range []string{"", "-3", "PID-", "PID-0", "PID-3(0)", "PID(1", "PID-3.", "PID-3.1.2.3", "PID-x", "PID 3", "PID-3(2", "PID-99999999", "PID-3.1x"} {
		if _, err := ParsePath(in); !errors.Is(err, ErrBadPath) {
			t.Errorf("ParsePath(%q) error = %v, want ErrBadPath", in, err)
		}
	}
}

func TestLocationString(t *testing.T) {
	tests := []struct {
		l    Location
		want string
	}{
		{Location{Segment: "PID"}, "PID"},
		{Location{Segment: "PID", SegmentIndex: 1, Field: 3}, "PID-3"},
		{Location{Segment: "OBX", SegmentIndex: 3, Field: 5, Repetition: 1}, "OBX(3)-5(1)"},
		{Location{Segment: "PID", Field: 5, Subcomponent: 2}, "PID-5.1.2"},
		{Location{Segment: "PID", Field: 3, Repetition: 2, Component: 4}, "PID-3(2).4"},
	}
	for _, tt := range tests {
		if got := tt.l.String(); got != tt.want {
			t.Errorf("%+v.String() = %q, want %q", tt.l, got, tt.want)
		}
		back, err := ParsePath(tt.want)
		if err != nil || back.String() != tt.want {
			t.Errorf("ParsePath(%q) round trip = %v, %v", tt.want, back, err)
		}
	}
}

func TestGetLookupRaw(t *testing.T) {
	m, err := Parse(readFixture(t, "fixtures/oru-paths.hl7"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path string
		get  string
		ok   bool
		raw  string
	}{
		{"MSH-1", "|", true, "|"},
		{"MSH-2", `^~\&`, true, `^~\&`},
		{"MSH-2.2", "", false, ""},
		{"MSH-3", "EPIC", true, "EPIC^1.2.3^ISO"},
		{"MSH-3.2", "1.2.3", true, "1.2.3"},
		{"MSH-9.1", "ORU", true, "ORU"},
		{"MSH-9.3", "ORU_R01", true, "ORU_R01"},
		{"MSH-9.4", "", false, ""},
		{"MSH-18(2)", "8859/1", true, "8859/1"},
		{"PID-3", "MRN1", true, "MRN1^^^HOSP^MR~NHS9^^^NHS^NH"},
		{"PID-3(1)", "MRN1", true, "MRN1^^^HOSP^MR"},
		{"PID-3(2)", "NHS9", true, "NHS9^^^NHS^NH"},
		{"PID-3(2).1", "NHS9", true, "NHS9"},
		{"PID-3(2).4", "NHS", true, "NHS"},
		{"PID-3(2).2", "", true, ""},
		{"PID-3(3)", "", false, ""},
		{"PID-3.5", "MR", true, "MR"},
		{"PID-5", "DOE", true, "DOE&VAN^JOHN^Q"},
		{"PID-5.1", "DOE", true, "DOE&VAN"},
		{"PID-5.1.2", "VAN", true, "VAN"},
		{"PID-5.1.3", "", false, ""},
		{"PID-5.2", "JOHN", true, "JOHN"},
		{"PID-5.9", "", false, ""},
		{"PID-2", "", true, ""},
		{"PID-8", "M", true, "M"},
		{"PID-9", "", false, ""},
		{"PID-30", "", false, ""},
		{"OBX-5", "13.5", true, "13.5"},
		{"OBX(1)-5", "13.5", true, "13.5"},
		{"OBX(2)-5", "6.1", true, "6.1"},
		{"OBX(3)-5", "See & note\nline two", true, `See \T\ note\.br\line two`},
		{"OBX(3)-3.2", "Comment", true, "Comment"},
		{"OBX(4)-5", `""`, true, `""`},
		{"OBX(5)-5", "", false, ""},
		{"ZPS-2.2", "data", true, "data"},
		{"NTE-1", "", false, ""},
		{"bad path", "", false, ""},
	}
	for _, tt := range tests {
		got, ok := m.Lookup(tt.path)
		if got != tt.get || ok != tt.ok {
			t.Errorf("Lookup(%q) = %q, %v; want %q, %v", tt.path, got, ok, tt.get, tt.ok)
		}
		if g := m.Get(tt.path); g != tt.get {
			t.Errorf("Get(%q) = %q, want %q", tt.path, g, tt.get)
		}
		if r := m.Raw(tt.path); r != tt.raw {
			t.Errorf("Raw(%q) = %q, want %q", tt.path, r, tt.raw)
		}
	}
	if got, want := m.Raw("OBR"), "OBR|1|ORD1||CBC^Complete blood count^LN"; got != want {
		t.Errorf("Raw(OBR) = %q, want %q", got, want)
	}
	if _, ok := m.Lookup("OBR"); !ok {
		t.Error("Lookup(OBR) = false for a present segment")
	}
}

func TestNavigation(t *testing.T) {
	m, err := Parse(readFixture(t, "fixtures/oru-paths.hl7"))
	if err != nil {
		t.Fatal(err)
	}
	obxs := m.Segments("OBX")
	if len(obxs) != 4 {
		t.Fatalf("len(Segments(OBX)) = %d", len(obxs))
	}
	var names []string
	for _, s := range m.Segments("") {
		names = append(names, s.Name())
	}
	if diff := cmp.Diff([]string{"MSH", "PID", "OBR", "OBX", "OBX", "OBX", "OBX", "ZPS"}, names); diff != "" {
		t.Errorf("segment names (-want +got):\n%s", diff)
	}
	if obxs[2].Index() != 3 || obxs[2].Location().String() != "OBX(3)" {
		t.Errorf("third OBX index = %d, location %s", obxs[2].Index(), obxs[2].Location())
	}
	if got := obxs[2].Get("3.2"); got != "Comment" {
		t.Errorf("OBX(3) Get(3.2) = %q", got)
	}
	if !obxs[3].Field(5).IsNull() || obxs[3].Field(5).IsEmpty() {
		t.Error("OBX(4)-5 should be the explicit null")
	}

	pid := m.Segment("PID", 1)
	if pid.NumFields() != 8 {
		t.Errorf("PID NumFields = %d", pid.NumFields())
	}
	type cx struct {
		ID, Authority, Type string
	}
	var ids []cx
	for _, rep := range pid.Field(3).Repetitions() {
		ids = append(ids, cx{rep.Component(1).Value(), rep.Component(4).Value(), rep.Component(5).Value()})
	}
	if diff := cmp.Diff([]cx{{"MRN1", "HOSP", "MR"}, {"NHS9", "NHS", "NH"}}, ids); diff != "" {
		t.Errorf("PID-3 (-want +got):\n%s", diff)
	}
	f := pid.Field(5)
	if f.NumRepetitions() != 1 || f.Repetition(1).NumComponents() != 3 || f.Component(1).NumSubcomponents() != 2 {
		t.Errorf("PID-5 counts: %d reps, %d comps, %d subs", f.NumRepetitions(), f.Repetition(1).NumComponents(), f.Component(1).NumSubcomponents())
	}
	var subs []string
	for n, s := range f.Component(1).Subcomponents() {
		subs = append(subs, strconv.Itoa(n)+s)
	}
	if diff := cmp.Diff([]string{"1DOE", "2VAN"}, subs); diff != "" {
		t.Errorf("subcomponents (-want +got):\n%s", diff)
	}
	var comps []string
	for _, c := range f.Repetition(1).Components() {
		comps = append(comps, c.Raw())
	}
	if diff := cmp.Diff([]string{"DOE&VAN", "JOHN", "Q"}, comps); diff != "" {
		t.Errorf("components (-want +got):\n%s", diff)
	}
	var fieldNums []int
	for n, fl := range pid.Fields() {
		if !fl.IsEmpty() {
			fieldNums = append(fieldNums, n)
		}
		if n == 5 {
			break
		}
	}
	if diff := cmp.Diff([]int{1, 3, 5}, fieldNums); diff != "" {
		t.Errorf("non-empty fields up to 5 (-want +got):\n%s", diff)
	}
	if z := pid.Field(99); !z.IsEmpty() || z.NumRepetitions() != 0 || z.Value() != "" {
		t.Error("missing field should be empty")
	}
	if m.Segment("OBX", 5) != nil || m.Segment("NTE", 1) != nil {
		t.Error("Segment should return nil for absent occurrences")
	}
}

func TestGetDoesNotAllocate(t *testing.T) {
	m, err := Parse(readFixture(t, "fixtures/oru-paths.hl7"))
	if err != nil {
		t.Fatal(err)
	}
	n := testing.AllocsPerRun(100, func() {
		_ = m.Get("PID-3(2).4")
		_ = m.Get("OBX(2)-5")
		_ = m.ControlID()
	})
	if n != 0 {
		t.Errorf("allocs per Get = %v, want 0", n)
	}
}

// TestGetPathMatchesGet checks compiled paths against string paths on every
// element of the test messages, written in each path form, plus paths
// beyond the message and malformed ones. Where the element exists it also
// checks Get against the accessor chain, which shares no code with it.
func TestGetPathMatchesGet(t *testing.T) {
	files, err := filepath.Glob("testdata/messages/*.hl7")
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, "testdata/bench/adt_a01.hl7", "testdata/bench/oru_r01_cbc.hl7", "testdata/fixtures/oru-paths.hl7")
	if len(files) < 5 {
		t.Fatalf("only %d test messages", len(files))
	}
	bad := []string{"", "-3", "PID-", "PID-0", "PID-3(0)", "PID(1", "PID-3.", "PID-3.1.2.3", "PID-x", "PID 3", "PID-99999999", "pid 3", "(1)-2"}
	total := 0
	for _, file := range files {
		m, err := Parse(readFixture(t, strings.TrimPrefix(file, "testdata/")))
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		check := func(path string) {
			t.Helper()
			total++
			p, err := CompilePath(path)
			if _, perr := ParsePath(path); (err == nil) != (perr == nil) {
				t.Fatalf("%s: CompilePath(%q) error %v, ParsePath error %v", file, path, err, perr)
			}
			if err != nil {
				if !errors.Is(err, ErrBadPath) {
					t.Errorf("CompilePath(%q) error = %v, want ErrBadPath", path, err)
				}
				if v, ok := m.LookupPath(p); v != "" || ok {
					t.Errorf("%s: LookupPath(zero Path from %q) = %q, %v", file, path, v, ok)
				}
				if v, ok := m.Lookup(path); v != "" || ok {
					t.Errorf("%s: Lookup(%q) = %q, %v for a malformed path", file, path, v, ok)
				}
				return
			}
			want, wantOK := m.Lookup(path)
			if got, ok := m.LookupPath(p); got != want || ok != wantOK {
				t.Errorf("%s: LookupPath(%q) = %q, %v; Lookup = %q, %v", file, path, got, ok, want, wantOK)
			}
			if got, want := m.GetPath(MustPath(path)), m.Get(path); got != want {
				t.Errorf("%s: GetPath(MustPath(%q)) = %q; Get = %q", file, path, got, want)
			}
			if p2, err := CompilePath(p.String()); err != nil || p2.String() != p.String() {
				t.Errorf("%s: %q compiles to %+v, String %q, which compiles to %+v, %v", file, path, p, p.String(), p2, err)
			}
		}
		for _, path := range bad {
			check(path)
		}
		check("ZZZ-1")
		for _, s := range m.Segments("") {
			name, k := s.Name(), s.Index()
			segs := []string{fmt.Sprintf("%s(%d)", name, k), fmt.Sprintf("%s(%d)", name, k+1)}
			if k == 1 {
				segs = append(segs, name)
			}
			for _, sp := range segs {
				check(sp)
				check(sp + "-1")
				check(fmt.Sprintf("%s-%d", sp, s.NumFields()+1))
			}
			seg := segs[0]
			for n, f := range s.Fields() {
				check(fmt.Sprintf("%s-%d", seg, n))
				for r := 1; r <= f.NumRepetitions()+1; r++ {
					rep := f.Repetition(r)
					check(fmt.Sprintf("%s-%d(%d)", seg, n, r))
					for c := 1; c <= rep.NumComponents()+1; c++ {
						comp := rep.Component(c)
						check(fmt.Sprintf("%s-%d(%d).%d", seg, n, r, c))
						if r == 1 {
							check(fmt.Sprintf("%s-%d.%d", seg, n, c))
							check(fmt.Sprintf("%s-%d-%d", seg, n, c))
						}
						for sc := 1; sc <= comp.NumSubcomponents()+1; sc++ {
							path := fmt.Sprintf("%s-%d(%d).%d.%d", seg, n, r, c, sc)
							check(path)
							if r == 1 {
								check(fmt.Sprintf("%s-%d-%d-%d", seg, n, c, sc))
							}
							exists := r <= f.NumRepetitions() && c <= rep.NumComponents() && sc <= comp.NumSubcomponents()
							if exists && !(s.header && n <= 2) { // MSH-1 and MSH-2 are not split
								if got, want := m.GetPath(MustPath(path)), comp.Subcomponent(sc); got != want {
									t.Errorf("%s: GetPath(%q) = %q, accessors give %q", file, path, got, want)
								}
							}
						}
					}
				}
			}
		}
	}
	if total < 10000 {
		t.Errorf("only %d paths checked", total)
	}
	t.Logf("%d paths on %d messages", total, len(files))
}

func TestPathZeroAndMust(t *testing.T) {
	m, err := Parse(readFixture(t, "fixtures/oru-paths.hl7"))
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := m.LookupPath(Path{}); v != "" || ok {
		t.Errorf("LookupPath(Path{}) = %q, %v; want \"\", false", v, ok)
	}
	if got := m.GetPath(MustPath("PID-5.1.2")); got != "VAN" {
		t.Errorf("GetPath(PID-5.1.2) = %q", got)
	}
	if got := MustPath("OBX(1)-5-1").String(); got != "OBX-5.1" {
		t.Errorf("MustPath(OBX(1)-5-1).String() = %q", got)
	}
	if l := MustPath("OBX(3)-5(2).1").Location(); l != (Location{Segment: "OBX", SegmentIndex: 3, Field: 5, Repetition: 2, Component: 1}) {
		t.Errorf("Location() = %+v", l)
	}
	defer func() {
		if r := recover(); r == nil || !strings.Contains(fmt.Sprint(r), "PID-0") {
			t.Errorf("MustPath(PID-0) recovered %v, want a panic naming the path", r)
		}
	}()
	MustPath("PID-0")
}

func TestGetPathDoesNotAllocate(t *testing.T) {
	m, err := Parse(readFixture(t, "fixtures/oru-paths.hl7"))
	if err != nil {
		t.Fatal(err)
	}
	p1, p2 := MustPath("PID-3(2).4"), MustPath("OBX(2)-5")
	if n := testing.AllocsPerRun(100, func() {
		_ = m.GetPath(p1)
		_, _ = m.LookupPath(p2)
	}); n != 0 {
		t.Errorf("allocs per GetPath = %v, want 0", n)
	}
}
