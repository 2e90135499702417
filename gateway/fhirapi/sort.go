package fhirapi

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/nhp/interop/gateway/httpkit"
	"github.com/nhp/interop/internal/fhir"
)

// sortKey is one key of _sort: a search parameter, descending when written with '-'.
type sortKey struct {
	name string
	desc bool
}

// mergeSortParams are the _sort parameters a fan-out search can merge by: the gateway must
// read each one's value from the resources to interleave owners' pages.
var mergeSortParams = map[string]bool{
	"_lastUpdated": true, "_id": true, "date": true, "status": true, "code": true,
	"identifier": true, "patient": true, "subject": true, "birthdate": true,
}

// parseSort reads _sort for a fan-out search; no _sort means _lastUpdated, oldest first. It
// returns the keys and the _sort value the owners are asked to sort by.
func parseSort(values []string) ([]sortKey, string, error) {
	if len(values) > 1 {
		return nil, "", httpkit.NewOutcome(http.StatusBadRequest, fhir.IssueValue, "_sort given more than once")
	}
	spec := "_lastUpdated"
	if len(values) == 1 && strings.TrimSpace(values[0]) != "" {
		spec = values[0]
	}
	var keys []sortKey
	for _, p := range strings.Split(spec, ",") {
		p = strings.TrimSpace(p)
		k := sortKey{name: strings.TrimPrefix(p, "-"), desc: strings.HasPrefix(p, "-")}
		if !mergeSortParams[k.name] {
			return nil, "", httpkit.NewOutcome(http.StatusBadRequest, fhir.IssueNotSupported,
				"_sort "+p+" cannot be merged across the owners of this type; sort by _lastUpdated, _id, date, status, code, identifier, patient, subject or birthdate, or name a category")

		}
		keys = append(keys, k)
	}
	return keys, spec, nil
}

// sortValue is one resource's value of a sort key: a time when it reads as one, else text.
type sortValue struct {
	missing bool
	isTime  bool
	t       time.Time
	s       string
}

// sortable holds the elements sort keys read (FHIR R4 names); decoding into it skips the rest.
type sortable struct {
	ID   string `json:"id"`
	Meta struct {
		LastUpdated string `json:"lastUpdated"`
	} `json:"meta"`
	Status             string  `json:"status"`
	EffectiveDateTime  string  `json:"effectiveDateTime"`
	EffectiveInstant   string  `json:"effectiveInstant"`
	EffectivePeriod    *period `json:"effectivePeriod"`
	Period             *period `json:"period"`
	OnsetDateTime      string  `json:"onsetDateTime"`
	PerformedDateTime  string  `json:"performedDateTime"`
	OccurrenceDateTime string  `json:"occurrenceDateTime"`
	AuthoredOn         string  `json:"authoredOn"`
	Issued             string  `json:"issued"`
	BirthDate          string  `json:"birthDate"`
	Code               *struct {
		Coding []struct {
			Code string `json:"code"`
		} `json:"coding"`
		Text string `json:"text"`
	} `json:"code"`
	Identifier []struct {
		Value string `json:"value"`
	} `json:"identifier"`
	Subject *reference `json:"subject"`
	Patient *reference `json:"patient"`
}

type period struct {
	Start string `json:"start"`
}

type reference struct {
	Reference string `json:"reference"`
}

func sortValues(resource json.RawMessage, keys []sortKey) []sortValue {
	if len(keys) == 1 && keys[0].name == "_lastUpdated" {
		if v, ok := lastUpdatedOf(resource); ok {
			return []sortValue{toSortValue(v)}
		}
	}
	var r sortable
	_ = json.Unmarshal(resource, &r) // an unreadable resource sorts as having no values
	out := make([]sortValue, len(keys))
	for i, k := range keys {
		var s string
		switch k.name {
		case "_lastUpdated":
			s = r.Meta.LastUpdated
		case "_id":
			s = r.ID
		case "status":
			s = r.Status
		case "birthdate":
			s = r.BirthDate
		case "date":
			s = firstNonEmpty(r.EffectiveDateTime, r.EffectiveInstant, r.EffectivePeriod.start(), r.Period.start(),
				r.OnsetDateTime, r.PerformedDateTime, r.OccurrenceDateTime, r.AuthoredOn, r.Issued)
		case "code":
			if r.Code != nil {
				if len(r.Code.Coding) > 0 {
					s = r.Code.Coding[0].Code
				} else {
					s = r.Code.Text
				}
			}
		case "identifier":
			if len(r.Identifier) > 0 {
				s = r.Identifier[0].Value
			}
		case "patient", "subject":
			if r.Subject != nil {
				s = r.Subject.Reference
			} else if r.Patient != nil {
				s = r.Patient.Reference
			}
		}
		out[i] = toSortValue(s)
	}
	return out
}

var lastUpdatedKey = []byte(`"lastUpdated"`)

// lastUpdatedOf reads meta.lastUpdated without decoding the resource: the default sort of
// every fan-out reads it from every match. It answers only when the key occurs once (then it
// is meta's: no other R4 element has that name) with a plain string value.
func lastUpdatedOf(resource []byte) (string, bool) {
	i := bytes.Index(resource, lastUpdatedKey)
	if i < 0 || bytes.Contains(resource[i+len(lastUpdatedKey):], lastUpdatedKey) {
		return "", false
	}
	rest := bytes.TrimLeft(resource[i+len(lastUpdatedKey):], " \t\r\n")
	if len(rest) == 0 || rest[0] != ':' {
		return "", false
	}
	rest = bytes.TrimLeft(rest[1:], " \t\r\n")
	if len(rest) == 0 || rest[0] != '"' {
		return "", false
	}
	end := bytes.IndexByte(rest[1:], '"')
	if end < 0 || bytes.IndexByte(rest[1:end+1], '\\') >= 0 {
		return "", false
	}
	return string(rest[1 : end+1]), true
}

func (p *period) start() string {
	if p == nil {
		return ""
	}
	return p.Start
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

var timeLayouts = []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02", "2006-01", "2006"}

func toSortValue(s string) sortValue {
	if s == "" {
		return sortValue{missing: true}
	}
	if len(s) >= 4 && s[0] >= '0' && s[0] <= '9' {
		for _, l := range timeLayouts {
			if t, err := time.Parse(l, s); err == nil {
				return sortValue{isTime: true, t: t, s: s}
			}
		}
	}
	return sortValue{s: s}
}

// lessKeys reports whether a sorts before b. Missing values sort last in either direction.
func lessKeys(a, b []sortValue, keys []sortKey) bool {
	for i, k := range keys {
		x, y := a[i], b[i]
		if x.missing || y.missing {
			if x.missing != y.missing {
				return y.missing
			}
			continue
		}
		c := 0
		if x.isTime && y.isTime {
			c = x.t.Compare(y.t)
		} else {
			c = strings.Compare(x.s, y.s)
		}
		if c != 0 {
			return (c < 0) != k.desc
		}
	}
	return false
}
