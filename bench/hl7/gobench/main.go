// Command gobench is the Go side of `make bench-hl7`: it measures
// internal/hl7v2 on a corpus of HL7 v2 messages, on one goroutine with
// GOMAXPROCS=1, so that bench/hl7/run.sh can set it beside an independent
// Node parser (bench/hl7/node/bench.mjs) run on exactly the same bytes.
//
//	gobench prepare -out corpus.json DIR...   select and normalise the corpus
//	gobench run -corpus corpus.json -mode parse|typed [-duration 3s] [-warmup 2s]
//
// prepare walks the directories for *.hl7 and *.txt files, keeps those that
// hold exactly one message (first bytes "MSH" after an optional UTF-8 BOM,
// one MSH segment, no FHS/BHS/BTS/FTS batch segments), normalises segment
// terminators to CR (CRLF, CR and LF all end a segment; blank lines are
// dropped; the last segment ends in CR), removes exact duplicates and writes
// the result as JSON with the bytes base64-encoded, so both sides read
// identical input. Selection and normalisation use plain byte handling, not
// the parser under test.
//
// run prints one JSON object: messages/s and MB/s (10^6 bytes) over the
// timed window. Mode "parse" parses every message of the corpus in a loop;
// mode "typed" parses each ADT message and reads the typed fields listed in
// adtPaths with Message.Get, as a consumer would, plus hl7v2.ParseTime on
// PID-7.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/nhp/interop/internal/hl7v2"
)

// adtPaths are the fields the typed mode reads from every ADT message; the
// Node side reads the same ones (bench/hl7/node/bench.mjs, ADT_FIELDS).
// Get has terser semantics: each path yields one leaf value.
var adtPaths = []string{
	"MSH-9", "MSH-9.2", "MSH-10", "MSH-7",
	"EVN-2",
	"PID-3(1).1", "PID-3(1).4.1", "PID-5.1", "PID-5.2", "PID-7", "PID-8",
	"PID-11.1", "PID-11.3", "PID-11.5", "PID-13", "PID-18",
	"PV1-2", "PV1-3.1", "PV1-7.1", "PV1-19", "PV1-44",
}

const pid7 = 9 // index of "PID-7" in adtPaths, parsed with hl7v2.ParseTime

type corpusFile struct {
	Source   string          `json:"source"`
	Skipped  map[string]int  `json:"skipped"`
	Messages []corpusMessage `json:"messages"`
}

type corpusMessage struct {
	Name string `json:"name"` // path relative to its source directory
	Type string `json:"type"` // MSH-9 as written, e.g. "ADT^A01^ADT_A01"
	ADT  bool   `json:"adt"`  // MSH-9.1 is ADT and a PID segment is present
	Data []byte `json:"data"` // normalised message, base64 in JSON
}

type result struct {
	Impl         string  `json:"impl"`
	Parser       string  `json:"parser"`
	Runtime      string  `json:"runtime"`
	Mode         string  `json:"mode"`
	Messages     int     `json:"messages"` // distinct messages in the measured set
	Bytes        int     `json:"bytes"`    // their total size
	Fields       int     `json:"fields_per_message,omitempty"`
	Parsed       int64   `json:"parsed"` // messages processed in the timed window
	Seconds      float64 `json:"seconds"`
	MsgsPerSec   float64 `json:"msgs_per_s"`
	MBPerSec     float64 `json:"mb_per_s"`
	AllocsPerMsg float64 `json:"allocs_per_msg"`
	AllocBPerMsg float64 `json:"alloc_bytes_per_msg"`
	GOMAXPROCS   int     `json:"gomaxprocs"`
	Sink         int64   `json:"sink"`
}

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "prepare":
		err = prepareCmd(os.Args[2:])
	case "run":
		err = runCmd(os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "gobench:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: gobench prepare -out corpus.json DIR... | gobench run -corpus corpus.json -mode parse|typed [-duration 3s] [-warmup 2s] [-dump-values FILE]")
	os.Exit(2)
}

// ---- prepare ---------------------------------------------------------------

func prepareCmd(args []string) error {
	fl := flag.NewFlagSet("prepare", flag.ExitOnError)
	out := fl.String("out", "", "write the corpus JSON here")
	_ = fl.Parse(args)
	if *out == "" || fl.NArg() == 0 {
		return errors.New("prepare needs -out and at least one directory")
	}
	c := corpusFile{Source: strings.Join(fl.Args(), " "), Skipped: map[string]int{}}
	seen := map[string]bool{}
	for _, dir := range fl.Args() {
		var names []string
		err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !d.IsDir() && (strings.HasSuffix(p, ".hl7") || strings.HasSuffix(p, ".txt")) {
				names = append(names, p)
			}
			return nil
		})
		if err != nil {
			return err
		}
		slices.Sort(names)
		for _, p := range names {
			raw, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			msg, why := normalise(raw)
			if why != "" {
				c.Skipped[why]++
				continue
			}
			if seen[string(msg)] {
				c.Skipped["duplicate"]++
				continue
			}
			seen[string(msg)] = true
			rel, _ := filepath.Rel(dir, p)
			typ, adt := classify(msg)
			c.Messages = append(c.Messages, corpusMessage{Name: rel, Type: typ, ADT: adt, Data: msg})
		}
	}
	if len(c.Messages) == 0 {
		return errors.New("no HL7 message found in " + c.Source)
	}
	b, err := json.Marshal(c)
	if err != nil {
		return err
	}
	return os.WriteFile(*out, b, 0o644)
}

// normalise returns the message with CR terminators, or why the file is not
// one HL7 message.
func normalise(raw []byte) ([]byte, string) {
	raw = bytes.TrimPrefix(raw, []byte("\xef\xbb\xbf"))
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil, "empty"
	}
	if !bytes.HasPrefix(raw, []byte("MSH")) || len(raw) < 8 {
		return nil, "not HL7 (no MSH first)"
	}
	sep := raw[3]
	var lines [][]byte
	nMSH := 0
	for _, l := range splitLines(raw) {
		if len(bytes.Trim(l, " \t")) == 0 {
			continue
		}
		switch name := segName(l, sep); name {
		case "MSH":
			nMSH++
		case "FHS", "BHS", "BTS", "FTS":
			return nil, "batch"
		}
		lines = append(lines, l)
	}
	if nMSH != 1 {
		return nil, "more than one MSH"
	}
	var b bytes.Buffer
	for _, l := range lines {
		b.Write(l)
		b.WriteByte('\r')
	}
	return b.Bytes(), ""
}

func splitLines(b []byte) [][]byte {
	var out [][]byte
	for len(b) > 0 {
		i := bytes.IndexAny(b, "\r\n")
		if i < 0 {
			out = append(out, b)
			break
		}
		out = append(out, b[:i])
		if b[i] == '\r' && i+1 < len(b) && b[i+1] == '\n' {
			i++
		}
		b = b[i+1:]
	}
	return out
}

func segName(line []byte, sep byte) string {
	if i := bytes.IndexByte(line, sep); i >= 0 {
		return string(line[:i])
	}
	return string(line)
}

// classify reads MSH-9 and whether the message is an ADT with a PID.
func classify(msg []byte) (string, bool) {
	sep := msg[3]
	comp := msg[4]
	lines := bytes.Split(msg, []byte{'\r'})
	fields := bytes.Split(lines[0], []byte{sep}) // [0]="MSH", [1]=MSH-2, [n-1]=MSH-n
	typ := ""
	if len(fields) > 8 {
		typ = string(fields[8])
	}
	hasPID := false
	for _, l := range lines[1:] {
		if segName(l, sep) == "PID" {
			hasPID = true
		}
	}
	first, _, _ := strings.Cut(typ, string(comp))
	return typ, first == "ADT" && hasPID
}

// ---- run -------------------------------------------------------------------

func runCmd(args []string) error {
	fl := flag.NewFlagSet("run", flag.ExitOnError)
	corpusPath := fl.String("corpus", "", "corpus JSON written by prepare")
	mode := fl.String("mode", "parse", "parse (every message) or typed (parse + typed access on the ADT subset)")
	dur := fl.Duration("duration", 3*time.Second, "timed window")
	warm := fl.Duration("warmup", 2*time.Second, "untimed warm-up")
	dump := fl.String("dump-values", "", "typed mode: write the values read from each ADT message here (TSV), before timing")
	_ = fl.Parse(args)
	runtime.GOMAXPROCS(1) // one core for parsing and for the GC's workers

	b, err := os.ReadFile(*corpusPath)
	if err != nil {
		return err
	}
	var c corpusFile
	if err := json.Unmarshal(b, &c); err != nil {
		return err
	}
	var set [][]byte
	for _, m := range c.Messages {
		if *mode == "parse" || m.ADT {
			set = append(set, m.Data)
		}
	}
	if len(set) == 0 {
		return fmt.Errorf("mode %s: no message to measure", *mode)
	}

	var work func([]byte) int64
	switch *mode {
	case "parse":
		work = parseOnly
	case "typed":
		work = parseTyped
		if *dump != "" {
			if err := dumpValues(*dump, set); err != nil {
				return err
			}
		}
	default:
		return fmt.Errorf("unknown mode %q", *mode)
	}

	// Every message must parse; the corpus was selected for that.
	failures := 0
	for _, m := range set {
		if _, err := hl7v2.Parse(m); err != nil {
			failures++
		}
	}
	if failures > 0 {
		return fmt.Errorf("%d corpus messages fail to parse", failures)
	}

	total := 0
	for _, m := range set {
		total += len(m)
	}
	var sink int64
	pass := func() {
		for _, m := range set {
			sink += work(m)
		}
	}
	for t0 := time.Now(); time.Since(t0) < *warm; {
		pass()
	}
	runtime.GC()
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	var n int64
	start := time.Now()
	var elapsed time.Duration
	for {
		pass()
		n += int64(len(set))
		if elapsed = time.Since(start); elapsed >= *dur {
			break
		}
	}
	runtime.ReadMemStats(&ms1)
	secs := elapsed.Seconds()
	passes := float64(n) / float64(len(set))
	r := result{
		Impl:         "go",
		Parser:       "github.com/nhp/interop/internal/hl7v2",
		Runtime:      runtime.Version(),
		Mode:         *mode,
		Messages:     len(set),
		Bytes:        total,
		Parsed:       n,
		Seconds:      secs,
		MsgsPerSec:   float64(n) / secs,
		MBPerSec:     passes * float64(total) / secs / 1e6,
		AllocsPerMsg: float64(ms1.Mallocs-ms0.Mallocs) / float64(n),
		AllocBPerMsg: float64(ms1.TotalAlloc-ms0.TotalAlloc) / float64(n),
		GOMAXPROCS:   runtime.GOMAXPROCS(0),
		Sink:         sink,
	}
	if *mode == "typed" {
		r.Fields = len(adtPaths)
	}
	out, _ := json.Marshal(r)
	fmt.Println(string(out))
	return nil
}

func parseOnly(data []byte) int64 {
	m, err := hl7v2.Parse(data)
	if err != nil {
		return 0
	}
	return int64(len(m.Problems()))
}

// parseTyped is what an ADT consumer does: parse, read the fields it maps,
// and turn the birth date into a time.
func parseTyped(data []byte) int64 {
	m, err := hl7v2.Parse(data)
	if err != nil {
		return 0
	}
	var n int64
	for i, p := range adtPaths {
		v := m.Get(p)
		n += int64(len(v))
		if i == pid7 {
			if t, _, err := hl7v2.ParseTime(v); err == nil {
				n += int64(t.Year())
			}
		}
	}
	return n
}

// dumpValues writes one line per message: the values of adtPaths, tab
// separated, with tabs/CR/LF inside values shown as \t, \r, \n. run.sh
// compares this with the Node side's dump to show both read the same data.
func dumpValues(path string, set [][]byte) error {
	var b strings.Builder
	esc := strings.NewReplacer("\\", "\\\\", "\t", `\t`, "\r", `\r`, "\n", `\n`)
	for _, data := range set {
		m, err := hl7v2.Parse(data)
		if err != nil {
			return err
		}
		for i, p := range adtPaths {
			if i > 0 {
				b.WriteByte('\t')
			}
			b.WriteString(esc.Replace(m.Get(p)))
		}
		b.WriteByte('\n')
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}
