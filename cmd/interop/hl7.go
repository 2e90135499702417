package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/nhp/interop/internal/fhir"
	"github.com/nhp/interop/internal/hl7v2"
	"github.com/nhp/interop/internal/mapping"
)

// hl7Cmd groups the offline HL7 v2 tools: they read files and need no
// database, Temporal or network.
type hl7Cmd struct {
	Lint hl7LintCmd `cmd:"" help:"Check HL7 v2 files (one message, several, or FHS/BHS batches) as the pipeline would process them: an error for each message it would refuse, a warning for each parse problem and mapping note."`
	Map  hl7MapCmd  `cmd:"" help:"Print the FHIR transaction Bundle each message maps to, as the workflow's Map step would."`
}

// mapperFlags choose the Mapper of `hl7 map` and `hl7 lint`: the same one, so that lint
// reports what map does.
type mapperFlags struct {
	Tenants string `type:"existingfile" env:"INTEROP_MAPPING_TENANTS" help:"Tenants' mapping configuration (JSON; national profiles, identifier systems, time zone)."`
	Tenant  string `help:"Map as this tenant (its entry in --tenants)."`
	TZ      string `name:"tz" placeholder:"ZONE" help:"IANA time zone of the sender's clocks (e.g. Asia/Kabul) for times without a UTC offset, as a connector's settings.timeZone: used before the tenant's."`
}

// mapper returns the Mapper of the tenant, in the --tz zone when given. A bad --tz or tenants
// file is a usage error.
func (f mapperFlags) mapper() (*mapping.Mapper, error) {
	var tenants *mapping.Tenants
	if f.Tenants != "" {
		file, err := os.Open(f.Tenants)
		if err != nil {
			return nil, fmt.Errorf("tenants: %w", err)
		}
		tenants, err = mapping.LoadTenants(file)
		_ = file.Close() // read only: LoadTenants has read it, or failed and says why
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f.Tenants, err)
		}
	}
	m := tenants.ForTenant(f.Tenant)
	if f.TZ != "" {
		loc, err := mapping.LoadZone(f.TZ)
		if err != nil {
			return nil, exitError{code: 2, msg: "--tz: " + err.Error()}
		}
		m = m.InZone(loc)
	}
	return m, nil
}

// hl7LintCmd is `interop hl7 lint`.
type hl7LintCmd struct {
	Format      string   `enum:"text,json" default:"text" help:"Output: text lines, or JSON lines for tools (${enum})."`
	MinSeverity string   `name:"min-severity" enum:"info,warning,error" default:"info" help:"Print only problems this grave or worse; the summary counts all (${enum})."`
	Files       []string `arg:"" type:"existingfile" help:"HL7 v2 files."`
	mapperFlags `embed:""`

	Stdout io.Writer `kong:"-"` // nil means os.Stdout; tests capture it
}

// lintFinding is one line of lint output: a problem of a message, of the
// file around the messages (batch envelope, layout), or a failure to read.
type lintFinding struct {
	File     string `json:"file"`
	Message  int    `json:"message,omitempty"` // 1-based; 0 for the file around the messages
	Line     int    `json:"line,omitempty"`    // line in the file, known for file problems
	Severity string `json:"severity"`
	Code     string `json:"code"`
	Location string `json:"location,omitempty"` // terser path, e.g. "PID-7" or "BTS-1"
	Text     string `json:"text"`

	grave hl7v2.Severity
}

// String formats the finding as FILE:MSG#: SEVERITY CODE at LOCATION: TEXT,
// with "file" in place of the message number for problems of the file.
func (f lintFinding) String() string {
	where := "file"
	if f.Message > 0 {
		where = strconv.Itoa(f.Message)
	}
	var at string
	if f.Location != "" {
		at = " at " + f.Location
	}
	if f.Line > 0 {
		at += fmt.Sprintf(" (line %d)", f.Line)
	}
	return fmt.Sprintf("%s:%s: %s %s%s: %s", f.File, where, f.Severity, f.Code, at, f.Text)
}

// lintSummary is the last line of lint output.
type lintSummary struct {
	Messages int `json:"messages"`
	Errors   int `json:"errors"`
	Warnings int `json:"warnings"`
	Files    int `json:"files"`
}

// Run lints every file with the code path of `hl7 map` (and the workflow's Parse and Map
// steps): each message is parsed and mapped, a refusal (a message that cannot be parsed or
// mapped, a file that holds none) is an error, and the parser's problems and the mapping's
// notes are warnings. So it exits 1 exactly when `hl7 map` would, and warns of everything
// that would become a note on the attempt.
func (c hl7LintCmd) Run() error {
	mapper, err := c.mapper()
	if err != nil {
		return err
	}
	out := writerOr(c.Stdout, os.Stdout)
	minimum := map[string]hl7v2.Severity{"info": hl7v2.SeverityInfo, "warning": hl7v2.SeverityWarning, "error": hl7v2.SeverityError}[c.MinSeverity]
	var sum lintSummary
	emit := func(f lintFinding) error {
		switch {
		case f.grave >= hl7v2.SeverityError:
			sum.Errors++
		case f.grave == hl7v2.SeverityWarning:
			sum.Warnings++
		}
		if f.grave < minimum {
			return nil
		}
		return c.print(out, f)
	}
	for _, path := range c.Files {
		sum.Files++
		n, err := lintFile(path, mapper, emit)
		sum.Messages += n
		if err != nil {
			return err
		}
	}
	if err := c.print(out, sum); err != nil {
		return err
	}
	if sum.Errors > 0 {
		return exitError{code: 1, msg: fmt.Sprintf("lint: %d errors in %d files", sum.Errors, sum.Files)}
	}
	return nil
}

// print writes a finding or the summary in the chosen format.
func (c hl7LintCmd) print(w io.Writer, v any) error {
	var err error
	switch v := v.(type) {
	case lintFinding:
		if c.Format == "json" {
			err = json.NewEncoder(w).Encode(struct {
				Kind string `json:"kind"`
				lintFinding
			}{"problem", v})
		} else {
			_, err = fmt.Fprintln(w, v)
		}
	case lintSummary:
		if c.Format == "json" {
			err = json.NewEncoder(w).Encode(struct {
				Kind string `json:"kind"`
				lintSummary
			}{"summary", v})
		} else {
			_, err = fmt.Fprintf(w, "%d messages, %d errors, %d warnings in %d files\n", v.Messages, v.Errors, v.Warnings, v.Files)
		}
	}
	if err != nil {
		return fmt.Errorf("write output: %w", err)
	}
	return nil
}

// lintFile splits one file, parses and maps each message and reports every problem
// through emit. It returns the number of messages; its error is emit's.
func lintFile(path string, mapper *mapping.Mapper, emit func(lintFinding) error) (int, error) {
	data, err := os.ReadFile(path) //nolint:gosec // G304: the operator names the file on the command line
	if err != nil {
		return 0, emit(lintFinding{File: path, Severity: "fatal", Code: "unreadable", Text: err.Error(), grave: hl7v2.SeverityFatal})
	}
	bf, splitErr := hl7v2.SplitBatch(data)
	for _, p := range bf.Problems {
		if err := emit(problemFinding(path, 0, bf.Line(p.Offset), p)); err != nil {
			return 0, err
		}
	}
	if splitErr != nil {
		return 0, emit(failureFinding(path, 0, splitErr))
	}
	for i, m := range bf.Messages {
		if err := lintMessage(path, i+1, m.Data, mapper, emit); err != nil {
			return 0, err
		}
	}
	return len(bf.Messages), nil
}

// lintMessage reports the parser's problems of message n, then maps it as mapMessage does:
// its refusal, or its notes.
func lintMessage(path string, n int, data []byte, mapper *mapping.Mapper, emit func(lintFinding) error) error {
	msg, err := hl7v2.Parse(data)
	if err != nil {
		return emit(failureFinding(path, n, err))
	}
	for _, p := range msg.Problems() {
		if err := emit(problemFinding(path, n, 0, p)); err != nil {
			return err
		}
	}
	res, err := mapper.Map(msg)
	if err != nil {
		r := mapping.Refusal(err)
		code := "mapping-failed"
		if errors.Is(err, mapping.ErrUnmappable) {
			code = "unmappable"
		}
		return emit(lintFinding{File: path, Message: n, Severity: hl7v2.SeverityError.String(), Code: code,
			Location: r.Location, Text: r.Text, grave: hl7v2.SeverityError})
	}
	for _, s := range res.Notes {
		note := mapping.ParseNote(s)
		// A field the mapping does not read is the field accounting's finding, not a fault of
		// the message: information, shown unless --min-severity hides it.
		f := lintFinding{File: path, Message: n, Severity: hl7v2.SeverityWarning.String(), Code: "mapping-note",
			Location: note.Location, Text: note.Text, grave: hl7v2.SeverityWarning}
		if strings.HasSuffix(s, ": "+mapping.NotMapped) {
			f.Severity, f.Code, f.grave = hl7v2.SeverityInfo.String(), "not-mapped", hl7v2.SeverityInfo
		}
		if err := emit(f); err != nil {
			return err
		}
	}
	return nil
}

// problemFinding reports a problem the parser or the batch splitter found and worked around.
// The message is still processed, so it is at most a warning: lint's errors are exactly the
// refusals of `hl7 map`. The parser's own grading stays in the code (e.g. bad-segment-name).
func problemFinding(path string, msg, line int, p hl7v2.Problem) lintFinding {
	grave := min(p.Severity, hl7v2.SeverityWarning)
	f := lintFinding{File: path, Message: msg, Line: line, Severity: grave.String(), Code: string(p.Code), Text: p.Message, grave: grave}
	if p.Location != (hl7v2.Location{}) {
		f.Location = p.Location.String()
	}
	return f
}

// failureFinding reports a message (or file) that could not be read at
// all, with the failure kind as its code.
func failureFinding(path string, msg int, err error) lintFinding {
	f := lintFinding{File: path, Message: msg, Severity: hl7v2.SeverityFatal.String(), Code: "parse-failed", Text: err.Error(), grave: hl7v2.SeverityFatal}
	for _, k := range []struct {
		err  error
		code string
	}{{hl7v2.ErrNoMSH, "no-msh"}, {hl7v2.ErrShortMSH, "short-msh"}, {hl7v2.ErrBadDelimiters, "bad-delimiters"}} {
		if errors.Is(err, k.err) {
			f.Code = k.code
		}
	}
	var pe *hl7v2.ParseError
	if errors.As(err, &pe) {
		f.Location = pe.Location.String()
		f.Text = strings.TrimPrefix(pe.Err.Error(), "hl7v2: ")
		if pe.Detail != "" {
			f.Text += ": " + pe.Detail
		}
	}
	return f
}

// hl7MapCmd is `interop hl7 map`.
type hl7MapCmd struct {
	Array       bool     `help:"Print one JSON array of Bundles instead of one Bundle after another."`
	Coverage    bool     `help:"Print the field accounting instead of the Bundle: every populated component of each message and whether the mapping read it (mapped) or not (not mapped)."`
	Files       []string `arg:"" type:"existingfile" help:"HL7 v2 files."`
	mapperFlags `embed:""`

	Stdout io.Writer `kong:"-"` // nil means os.Stdout; tests capture it
	Stderr io.Writer `kong:"-"` // nil means os.Stderr
}

// Run maps every message with the tenant's Mapper, after hl7v2.Parse with
// default options: the code path of the workflow's Parse and Map activities.
// A message that cannot be parsed or mapped is reported on stderr and makes
// the exit status 1; the others are still printed. Mapping notes go to stderr.
func (c hl7MapCmd) Run() error {
	out, errOut := writerOr(c.Stdout, os.Stdout), writerOr(c.Stderr, os.Stderr)
	mapper, err := c.mapper()
	if err != nil {
		return err
	}
	var bundles []*fhir.Bundle
	total, failed, empty := 0, 0, 0
	for _, path := range c.Files {
		data, err := os.ReadFile(path) //nolint:gosec // G304: the operator names the file on the command line
		if err != nil {
			return fmt.Errorf("read %s: %w", path, err)
		}
		bf, err := hl7v2.SplitBatch(data)
		if err != nil {
			empty++
			warnf(errOut, "%s: no message: %v\n", path, err)
			continue
		}
		for i, m := range bf.Messages {
			total++
			res, err := mapMessage(mapper, m.Data)
			if err != nil {
				failed++
				warnf(errOut, "%s:%d: %v\n", path, i+1, err)
				continue
			}
			b := res.Bundle
			for _, n := range res.Notes {
				warnf(errOut, "%s:%d: note: %s\n", path, i+1, n)
			}
			if c.Coverage {
				if err := writeCoverage(out, fmt.Sprintf("%s:%d", path, i+1), res.Coverage()); err != nil {
					return err
				}
				continue
			}
			if c.Array {
				bundles = append(bundles, b)
				continue
			}
			if err := writeJSON(out, b); err != nil {
				return err
			}
		}
	}
	if c.Array && !c.Coverage {
		if bundles == nil {
			bundles = []*fhir.Bundle{} // an empty array, not null
		}
		if err := writeJSON(out, bundles); err != nil {
			return err
		}
	}
	switch {
	case empty > 0:
		return exitError{code: 1, msg: fmt.Sprintf("map: %d of %d messages could not be mapped; %d files hold no message", failed, total, empty)}
	case failed > 0:
		return exitError{code: 1, msg: fmt.Sprintf("map: %d of %d messages could not be mapped", failed, total)}
	}
	return nil
}

// mapMessage parses and maps one message.
func mapMessage(m *mapping.Mapper, data []byte) (mapping.Result, error) {
	msg, err := hl7v2.Parse(data)
	if err != nil {
		return mapping.Result{}, fmt.Errorf("cannot parse: %w", err)
	}
	res, err := m.Map(msg)
	if err != nil {
		return mapping.Result{}, fmt.Errorf("cannot map: %w", err)
	}
	return res, nil
}

// writeCoverage prints one message's field accounting: a summary line, then one line per
// populated component with its status, aligned.
func writeCoverage(w io.Writer, name string, c mapping.Coverage) error {
	pct := 0.0
	if c.Populated > 0 {
		pct = 100 * float64(c.Mapped) / float64(c.Populated)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	if _, err := fmt.Fprintf(tw, "%s: %d populated components, %d mapped (%.0f%%)\n", name, c.Populated, c.Mapped, pct); err != nil {
		return fmt.Errorf("write coverage: %w", err)
	}
	for _, f := range c.Fields {
		if _, err := fmt.Fprintf(tw, "  %s\t%s\n", f.Location, f.Status); err != nil {
			return fmt.Errorf("write coverage: %w", err)
		}
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write coverage: %w", err)
	}
	return nil
}

func writeJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encode bundle: %w", err)
	}
	if _, err := w.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("write output: %w", err)
	}
	return nil
}

func writerOr(w, def io.Writer) io.Writer {
	if w == nil {
		return def
	}
	return w
}

// warnf writes a diagnostic to the command's stderr. Its write error is dropped on purpose:
// a stderr that cannot be written leaves nowhere to report it, and the exit status still
// says whether the command succeeded.
func warnf(w io.Writer, format string, args ...any) {
	_, _ = fmt.Fprintf(w, format, args...)
}
