package hl7v2

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"text/tabwriter"
)

// corpusStats counts what splitting and parsing a collection of files gave.
type corpusStats struct {
	files, failedFiles    int // files read; files with no message at all
	messages, parsed      int // messages split out; those Parse accepted
	byType, byCode, fails map[string]int
}

func newCorpusStats() *corpusStats {
	return &corpusStats{byType: map[string]int{}, byCode: map[string]int{}, fails: map[string]int{}}
}

// corpusFloors are the counts measured when the corpus test was written
// (2026-11): parsing must not get worse. Raise them when it gets better.
var corpusFloors = map[string]struct{ files, messages, parsed, types int }{
	"testdata":  {files: 50, messages: 98, parsed: 98, types: 8},
	"reference": {files: 547, messages: 590, parsed: 590, types: 66},
}

// TestCorpus splits (batch-aware) and parses every message of the test
// data and, when present, of the shared reference collection, and logs
// counts per message type and problem code. Each message must parse or
// fail with a located *ParseError, no file may panic, and the counts must
// not fall below the measured floors.
func TestCorpus(t *testing.T) {
	t.Run("testdata", func(t *testing.T) { runCorpus(t, "testdata", "testdata") })
	t.Run("reference", func(t *testing.T) {
		dir := sharedReferenceDir()
		if dir == "" {
			t.Skip("reference corpus not available (set HL7V2_REFERENCE_DIR or check out /work/shared/reference)")
		}
		runCorpus(t, "reference", dir)
	})
}

func runCorpus(t *testing.T, name, dir string) {
	st := newCorpusStats()
	err := filepath.WalkDir(dir, func(path string, de fs.DirEntry, err error) error {
		if err != nil || de.IsDir() {
			return err
		}
		if ext := filepath.Ext(path); ext != ".hl7" && ext != ".txt" {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		st.file(t, path, data)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	st.log(t, name)
	floor := corpusFloors[name]
	if st.files < floor.files || st.messages < floor.messages || st.parsed < floor.parsed || len(st.byType) < floor.types {
		t.Errorf("%s regressed: %d files, %d messages, %d parsed, %d types; floor %d, %d, %d, %d",
			name, st.files, st.messages, st.parsed, len(st.byType), floor.files, floor.messages, floor.parsed, floor.types)
	}
}

// file splits and parses one file, turning a panic into a test error so
// that the rest of the corpus still runs.
func (st *corpusStats) file(t *testing.T, path string, data []byte) {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			t.Errorf("%s: panic: %v", path, r)
		}
	}()
	st.files++
	f, err := SplitBatch(data)
	for _, p := range f.Problems {
		st.byCode[string(p.Code)]++
		checkLocated(t, path+" (envelope)", p)
	}
	if err != nil {
		st.failedFiles++
		st.fails[failKind(err)]++
		checkParseError(t, path, err)
		return
	}
	for i, m := range f.Messages {
		st.messages++
		where := fmt.Sprintf("%s message %d", path, i+1)
		msg, err := Parse(m.Data)
		if err != nil {
			st.fails[failKind(err)]++
			checkParseError(t, where, err)
			continue
		}
		st.parsed++
		typ := msg.Type()
		st.byType[typ.Code+"^"+typ.Trigger]++
		for _, p := range msg.Problems() {
			st.byCode[string(p.Code)]++
			checkLocated(t, where, p)
		}
	}
}

// checkParseError requires a failure to say what kind it is and where.
func checkParseError(t *testing.T, where string, err error) {
	t.Helper()
	var pe *ParseError
	if !errors.As(err, &pe) || pe.Err == nil || pe.Location == (Location{}) && pe.Offset < 0 {
		t.Errorf("%s: failure without kind or location: %v", where, err)
	}
}

// checkLocated requires a problem to have a code, a severity and either a
// location or an offset.
func checkLocated(t *testing.T, where string, p Problem) {
	t.Helper()
	if p.Code == "" || p.Severity == 0 || p.Location == (Location{}) && p.Offset < 0 {
		t.Errorf("%s: problem without code, severity or place: %+v", where, p)
	}
}

func failKind(err error) string {
	for _, s := range []error{ErrNoMSH, ErrShortMSH, ErrBadDelimiters} {
		if errors.Is(err, s) {
			return strings.TrimPrefix(s.Error(), "hl7v2: ")
		}
	}
	return err.Error()
}

// log writes the counts as tables, most frequent first.
func (st *corpusStats) log(t *testing.T, name string) {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d files (%d without any message), %d messages, %d parsed\n",
		name, st.files, st.failedFiles, st.messages, st.parsed)
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	for _, tbl := range []struct {
		title string
		m     map[string]int
	}{{"message type", st.byType}, {"problem code", st.byCode}, {"failure", st.fails}} {
		_, _ = fmt.Fprintf(tw, "\n%s\tcount\n", tbl.title) // tabwriter buffers: errors surface at Flush
		keys := make([]string, 0, len(tbl.m))
		for k := range tbl.m {
			keys = append(keys, k)
		}
		sort.Slice(keys, func(i, j int) bool {
			if tbl.m[keys[i]] != tbl.m[keys[j]] {
				return tbl.m[keys[i]] > tbl.m[keys[j]]
			}
			return keys[i] < keys[j]
		})
		for _, k := range keys {
			_, _ = fmt.Fprintf(tw, "%s\t%d\n", k, tbl.m[k])
		}
	}
	if err := tw.Flush(); err != nil {
		t.Fatal(err)
	}
	t.Log(b.String())
}
