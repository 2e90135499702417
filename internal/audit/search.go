package audit

import (
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Search is a query of the audit trail (GET /admin/audit-events), read by ParseSearch.
type Search struct {
	// Agent is the requesting client's id (the token subject); "" for any.
	Agent string
	// Entity is a reference the event names ("Observation/9", "Hl7Message/<uuid>").
	Entity string
	// Patient is the Patient whose record was touched ("Patient/123").
	Patient string
	// Actions and Outcomes: any of them; none for any.
	Actions  []Action
	Outcomes []int16
	// From and Before bound recorded: From <= recorded < Before (nil: unbounded).
	From, Before *time.Time
	// Count is the page size.
	Count int
	// Cursor continues a previous page (opaque to this package).
	Cursor string
}

// Page sizes of the audit search.
const (
	DefaultCount = 50
	MaxCount     = 1000
)

// SearchParams are the parameters ParseSearch reads; any other is refused.
var SearchParams = []string{"patient", "agent", "entity", "action", "outcome", "date", "_count", "_cursor", "_format"}

// ParseSearch reads the parameters of an audit search:
//
//	patient=Patient/123 (or 123)   agent=<client id>   entity=Type/id
//	action=C,R,U,D,E (any of)      outcome=0,4,8,12 (any of)
//	date=[eq|ge|gt|le|lt|sa|eb]<FHIR date or instant> (repeatable: the ranges intersect)
//	_count=1..1000                 _cursor=<from a next link>
//
// An unknown parameter or a bad value is an error saying which.
func ParseSearch(q url.Values) (Search, error) {
	s := Search{Count: DefaultCount}
	for key, values := range q {
		if !slices.Contains(SearchParams, key) {
			return s, fmt.Errorf("unknown search parameter %q: supported are %s", key, strings.Join(SearchParams[:len(SearchParams)-1], ", "))
		}
		if key != "date" && len(values) > 1 {
			return s, fmt.Errorf("parameter %s is repeated", key)
		}
	}
	if v := q.Get("patient"); v != "" {
		if !strings.Contains(v, "/") {
			v = "Patient/" + v
		}
		ref, ok := PatientRef(v)
		if !ok {
			return s, fmt.Errorf("patient %q: want Patient/<id> or an id", v)
		}
		s.Patient = ref
	}
	s.Agent = strings.TrimSpace(q.Get("agent"))
	if v := q.Get("entity"); v != "" {
		typ, id, _, ok := splitRef(v)
		if !ok {
			return s, fmt.Errorf("entity %q: want Type/id, e.g. Observation/9 or Hl7Message/<uuid>", v)
		}
		s.Entity = typ + "/" + id
	}
	if v := q.Get("action"); v != "" {
		for _, a := range strings.Split(v, ",") {
			act := Action(strings.TrimSpace(a))
			if !act.Valid() {
				return s, fmt.Errorf("action %q: want C, R, U, D or E (comma-separated for any of them)", a)
			}
			if !slices.Contains(s.Actions, act) {
				s.Actions = append(s.Actions, act)
			}
		}
	}
	if v := q.Get("outcome"); v != "" {
		for _, o := range strings.Split(v, ",") {
			n, err := strconv.ParseInt(strings.TrimSpace(o), 10, 16)
			if err != nil || (n != 0 && n != 4 && n != 8 && n != 12) {
				return s, fmt.Errorf("outcome %q: want 0, 4, 8 or 12 (comma-separated for any of them)", o)
			}
			if !slices.Contains(s.Outcomes, int16(n)) {
				s.Outcomes = append(s.Outcomes, int16(n))
			}
		}
	}
	for _, v := range q["date"] {
		from, before, err := dateBounds(v)
		if err != nil {
			return s, err
		}
		if from != nil && (s.From == nil || from.After(*s.From)) {
			s.From = from
		}
		if before != nil && (s.Before == nil || before.Before(*s.Before)) {
			s.Before = before
		}
	}
	if v := q.Get("_count"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxCount {
			return s, fmt.Errorf("_count must be 1..%d", MaxCount)
		}
		s.Count = n
	}
	s.Cursor = q.Get("_cursor")
	return s, nil
}

// dateBounds is a date parameter's bounds on an instant: recorded >= from and recorded < before.
func dateBounds(v string) (from, before *time.Time, err error) {
	prefix := "eq"
	if len(v) > 2 && v[0] >= 'a' && v[0] <= 'z' {
		prefix, v = v[:2], v[2:]
	}
	lo, hi, err := DateRange(v)
	if err != nil {
		return nil, nil, err
	}
	switch prefix {
	case "eq":
		return &lo, &hi, nil
	case "ge":
		return &lo, nil, nil
	case "gt", "sa":
		return &hi, nil, nil
	case "le":
		return nil, &hi, nil
	case "lt", "eb":
		return nil, &lo, nil
	}
	return nil, nil, fmt.Errorf("date prefix %q: supported are eq, ge, gt, le, lt, sa, eb", prefix)
}

// DateRange reads a FHIR date, dateTime or instant at its precision as the half-open range it
// spans: "2024" is [2024-01-01, 2025-01-01), "2024-03-01T10:00Z" a minute. A time without a
// zone is UTC.
func DateRange(s string) (lo, hi time.Time, err error) {
	bad := fmt.Errorf("date %q: want YYYY, YYYY-MM, YYYY-MM-DD or YYYY-MM-DDThh:mm[:ss[.fff]][Z|±hh:mm]", s)
	switch len(s) {
	case 4, 7, 10:
		layout := map[int]string{4: "2006", 7: "2006-01", 10: "2006-01-02"}[len(s)]
		t, err := time.Parse(layout, s)
		if err != nil {
			return lo, hi, bad
		}
		switch len(s) {
		case 4:
			return t, t.AddDate(1, 0, 0), nil
		case 7:
			return t, t.AddDate(0, 1, 0), nil
		}
		return t, t.AddDate(0, 0, 1), nil
	}
	if len(s) < 16 || s[10] != 'T' {
		return lo, hi, bad
	}
	// A '+' of an offset arrives as a space when the client did not escape it.
	if strings.Contains(s[16:], " ") {
		s = s[:16] + strings.Replace(s[16:], " ", "+", 1)
	}
	body, zone := s, ""
	if i := strings.IndexAny(s[16:], "Z+-"); i >= 0 {
		body, zone = s[:16+i], s[16+i:]
	}
	var layout string
	prec := time.Second
	switch {
	case len(body) == 16:
		layout, prec = "2006-01-02T15:04", time.Minute
	case len(body) == 19:
		layout = "2006-01-02T15:04:05"
	case len(body) > 20 && body[19] == '.' && len(body) <= 29:
		digits := len(body) - 20
		layout = "2006-01-02T15:04:05." + strings.Repeat("9", digits)
		for range digits {
			prec /= 10
		}
	default:
		return lo, hi, bad
	}
	if zone != "" {
		layout += "Z07:00"
	}
	t, err := time.Parse(layout, body+zone)
	if err != nil {
		return lo, hi, bad
	}
	t = t.UTC()
	return t, t.Add(max(prec, time.Microsecond)), nil
}
