package mapping_test

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/nhp/interop/internal/hl7v2"
	"github.com/nhp/interop/internal/mapping"
)

// referenceDir is shared/reference beside the repository: public messages from other projects
// (see its SOURCES.md). CI lays it there; a laptop clone may not have it.
const referenceDir = "../../../shared/reference"

// TestFieldAccountingOverReferenceCorpus is the guarantee of field accounting: for every
// message of the reference corpus that maps, every populated component is either read by the
// mapping (Coverage says mapped) or named by a note — "<location>: not mapped" at the
// component, repetition, field or segment, or "Z-segment ignored". What is populated is
// worked out here by a splitter of the test's own (split on the message's delimiters), not by
// the parser that the accounting itself uses.
func TestFieldAccountingOverReferenceCorpus(t *testing.T) {
	if _, err := os.Stat(referenceDir); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("CI lays shared/ beside the repository, but %s is missing: %v", referenceDir, err)
		}
		t.Skipf("SKIPPED: %s is not beside this clone, so the corpus was not accounted", referenceDir)
	}
	mapper := mapping.New(mapping.Options{MessageResources: true})
	var messages, mapped, unmapped, populated, read int
	err := filepath.WalkDir(referenceDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !isHL7File(path) {
			return err
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		batch, err := hl7v2.SplitBatch(raw)
		if err != nil {
			return nil // no MSH at all: not a message
		}
		for i, bm := range batch.Messages {
			m, err := hl7v2.Parse(bm.Data)
			if err != nil {
				continue
			}
			messages++
			res, err := mapper.Map(m)
			if err != nil {
				continue // refused: the refusal is the attempt's error, nothing is written
			}
			mapped++
			name := fmt.Sprintf("%s#%d", strings.TrimPrefix(path, referenceDir+"/"), i+1)
			if res.Unmapped {
				// One note speaks for the whole message; nothing beyond the engine's MSH
				// fields is read.
				require.Len(t, res.Notes, 1, name)
				require.Empty(t, res.Bundle.Entry, name)
				unmapped++
				continue
			}
			p, r := checkAccounting(t, name, bm.Data, res)
			populated += p
			read += r
		}
		return nil
	})
	require.NoError(t, err)
	require.Greater(t, mapped, 300, "the corpus should hold hundreds of mappable messages")
	t.Logf("%d messages, %d mapped (%d of them of a type without a mapping: nothing written, one note); %d populated components in the others, %d read by the mapping (%.0f%%), the rest noted",
		messages, mapped, unmapped, populated, read, 100*float64(read)/float64(populated))
}

func isHL7File(path string) bool {
	ext := strings.ToLower(filepath.Ext(path))
	return ext == ".hl7" || ext == ".txt" && strings.Contains(strings.ToLower(path), "hl7")
}

// checkAccounting asserts consumed ∪ noted = populated for one mapped message and returns the
// counts of populated and read components.
func checkAccounting(t *testing.T, name string, raw []byte, res mapping.Result) (populated, read int) {
	t.Helper()
	cov := res.Coverage()
	status := map[string]string{}
	for _, f := range cov.Fields {
		status[f.Location] = f.Status
	}
	noted := map[string]bool{}
	for _, n := range res.Notes {
		if loc, ok := strings.CutSuffix(n, ": "+mapping.NotMapped); ok {
			noted[loc] = true
		} else if loc, ok := strings.CutSuffix(n, ": Z-segment ignored"); ok {
			noted[strings.Replace(loc, "(1)", "", 1)] = true
		}
	}
	units := populatedUnits(raw)
	require.Equal(t, len(units), cov.Populated, "%s: Coverage counts %d populated components, the splitter %d", name, cov.Populated, len(units))
	for _, u := range units {
		st, ok := status[u.location()]
		require.True(t, ok, "%s: %s is populated but Coverage does not list it", name, u.location())
		covered := u.coveredBy(noted)
		switch st {
		case mapping.StatusMapped:
			read++
			require.False(t, covered, "%s: %s is both read and noted as not mapped", name, u.location())
		default:
			require.True(t, covered, "%s: %s is populated, not read, and no note names it (status %q)", name, u.location(), st)
		}
	}
	return len(units), read
}

// unit is one populated component: segment (with its occurrence), field, repetition (and the
// field's repetition count, for formatting) and component (0 when the repetition has one).
type unit struct {
	seg             string
	occ, field      int
	rep, reps, comp int
}

func (u unit) segment() string {
	if u.occ > 1 {
		return fmt.Sprintf("%s(%d)", u.seg, u.occ)
	}
	return u.seg
}

func (u unit) fieldLoc() string { return fmt.Sprintf("%s-%d", u.segment(), u.field) }

func (u unit) repetition() string {
	if u.reps > 1 {
		return fmt.Sprintf("%s(%d)", u.fieldLoc(), u.rep)
	}
	return u.fieldLoc()
}

func (u unit) location() string {
	if u.comp > 0 {
		return fmt.Sprintf("%s.%d", u.repetition(), u.comp)
	}
	return u.repetition()
}

// coveredBy reports whether a note names the unit or what holds it.
func (u unit) coveredBy(noted map[string]bool) bool {
	withComp := u.repetition()
	if u.comp > 0 {
		withComp = fmt.Sprintf("%s.%d", u.repetition(), u.comp)
	}
	return noted[u.segment()] || noted[u.fieldLoc()] || noted[u.repetition()] || noted[withComp] ||
		// a one-component repetition may be noted at its component
		u.comp == 0 && noted[u.repetition()+".1"]
}

// populatedUnits splits raw on its own delimiters (MSH-1, MSH-2) the plain way: segments on CR
// or LF, then fields, repetitions, components. MSH-1 and MSH-2 are one unit each.
func populatedUnits(raw []byte) []unit {
	text := strings.TrimPrefix(string(raw), "\ufeff")
	fieldSep, compSep, repSep := byte('|'), byte('^'), byte('~')
	if i := strings.Index(text, "MSH"); i >= 0 && len(text) > i+7 {
		fieldSep, compSep, repSep = text[i+3], text[i+4], text[i+5]
	}
	var units []unit
	occ := map[string]int{}
	for _, line := range strings.FieldsFunc(text, func(r rune) bool { return r == '\r' || r == '\n' }) {
		line = strings.TrimLeft(line, " \t")
		if len(line) < 3 {
			continue
		}
		name := line[:3]
		occ[name]++
		fields := strings.Split(line, string(fieldSep))
		if name == "MSH" {
			// fields[0] is "MSH", fields[1] the encoding characters (MSH-2); MSH-1 is the
			// separator itself, so MSH-n is fields[n-1].
			units = append(units, unit{seg: name, occ: occ[name], field: 1, rep: 1, reps: 1})
			if fields[1] != "" {
				units = append(units, unit{seg: name, occ: occ[name], field: 2, rep: 1, reps: 1})
			}
			fields = append([]string{"MSH", string(fieldSep), ""}, fields[2:]...)
			fields[2] = ""
		}
		for f := 1; f < len(fields); f++ {
			if fields[f] == "" || name == "MSH" && f <= 2 {
				continue
			}
			reps := strings.Split(fields[f], string(repSep))
			for r, rv := range reps {
				if rv == "" {
					continue
				}
				comps := strings.Split(rv, string(compSep))
				for c, cv := range comps {
					if cv == "" {
						continue
					}
					u := unit{seg: name, occ: occ[name], field: f, rep: r + 1, reps: len(reps), comp: c + 1}
					if len(comps) == 1 {
						u.comp = 0
					}
					units = append(units, u)
				}
			}
		}
	}
	return units
}

// TestFieldAccountingNotesWhatIsNotRead: a field, a component, a repetition and a segment that
// the mapping does not read are each named once, at the coarsest level wholly unread; what it
// reads is not named; set ids and the engine's MSH fields count as read.
func TestFieldAccountingNotesWhatIsNotRead(t *testing.T) {
	raw := msh + "PID|1||1^^^H^MR||DOE^JO||19700101|F|||1 Main St^^Town^^^^H^^^^^^^^^X||||||||||||||||||||||||||||||||||||||||||XYZ\r" +
		"ROL|1|AD|PP|X^DOC\r"
	m, err := hl7v2.Parse([]byte(raw))
	require.NoError(t, err)
	res, err := mapping.New(mapping.Options{}).Map(m)
	require.NoError(t, err)
	var notMapped []string
	for _, n := range res.Notes {
		if loc, ok := strings.CutSuffix(n, ": "+mapping.NotMapped); ok {
			notMapped = append(notMapped, loc)
		}
	}
	require.Contains(t, notMapped, "ROL", "a segment nothing reads is one note")
	require.NotContains(t, notMapped, "PID-1", "a set id is structure, not data")
	require.NotContains(t, notMapped, "PID-5.1")
	require.NotContains(t, notMapped, "MSH-10", "the control id keys the message")
	cov := res.Coverage()
	require.Equal(t, len(populatedUnits([]byte(raw))), cov.Populated)
	checkAccounting(t, "inline", []byte(raw), res)
	require.Less(t, cov.Mapped, cov.Populated)
}

// TestFieldAccountingIsPerMapping: the same parsed message mapped twice gives the same notes
// (each mapping accounts on its own tagged copy, so reads never leak between passes).
func TestFieldAccountingIsPerMapping(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("testdata", "adt_a01_full.hl7"))
	require.NoError(t, err)
	m, err := hl7v2.Parse(raw)
	require.NoError(t, err)
	mp := mapping.New(mapping.Options{MessageResources: true})
	first, err := mp.Map(m)
	require.NoError(t, err)
	second, err := mp.Map(m)
	require.NoError(t, err)
	require.Equal(t, first.Notes, second.Notes)
	require.True(t, bytes.Equal([]byte(fmt.Sprint(first.Coverage())), []byte(fmt.Sprint(second.Coverage()))))
}

// TestMapConcurrentlyFromOneParse: one parsed Message mapped by several goroutines at once
// gives every one of them the same Bundle, notes and coverage. Each mapping accounts on its
// own Tagged copy; `make test` runs this under the race detector.
func TestMapConcurrentlyFromOneParse(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("testdata", "oru_r01_lri_cbc.hl7"))
	require.NoError(t, err)
	m, err := hl7v2.Parse(raw)
	require.NoError(t, err)
	mp := mapping.New(mapping.Options{MessageResources: true})
	want, err := mp.Map(m)
	require.NoError(t, err)
	wantBundle, err := want.Bundle.AppendJSON(nil)
	require.NoError(t, err)
	const workers = 8
	errs := make(chan error, workers)
	for range workers {
		go func() {
			for range 20 {
				got, err := mp.Map(m)
				if err != nil {
					errs <- err
					return
				}
				b, err := got.Bundle.AppendJSON(nil)
				switch {
				case err != nil:
					errs <- err
					return
				case !bytes.Equal(b, wantBundle):
					errs <- fmt.Errorf("bundle differs")
					return
				case fmt.Sprint(got.Notes) != fmt.Sprint(want.Notes):
					errs <- fmt.Errorf("notes differ: %v", got.Notes)
					return
				case got.Coverage().Mapped != want.Coverage().Mapped:
					errs <- fmt.Errorf("coverage differs")
					return
				}
			}
			errs <- nil
		}()
	}
	for range workers {
		require.NoError(t, <-errs)
	}
}
