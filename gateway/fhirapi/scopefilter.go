package fhirapi

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/google/uuid"

	"github.com/nhp/interop/internal/auth"
	"github.com/nhp/interop/internal/fhir"
	"github.com/nhp/interop/internal/routing"
)

// The scopes of a search reach its matches only. Every other resource an answer carries — an
// included or revincluded resource, _include:iterate's, a resource of another type an owner
// answers with — needs read on its own type, as a read of it would: otherwise a token for
// Observations would get the Patients they refer to. The built-in store filters its answers
// itself (fhirserver's Authorize, with the caller's scopes in the context); an external owner
// may not know the caller's scopes, so the gateway filters what it relays from one.

// readsEverything reports whether scopes read every type, so that nothing needs filtering.
func readsEverything(scopes auth.Scopes) bool { return scopes.Allows("*", auth.Read) }

// entryResourceType is the type of the resource an entry carries, else the type its request
// URL names (a history's deletion); "" when neither says.
func entryResourceType(e fhir.BundleEntry) string {
	if len(e.Resource) > 0 {
		var h struct {
			ResourceType string `json:"resourceType"`
		}
		if json.Unmarshal(e.Resource, &h) == nil && h.ResourceType != "" {
			return h.ResourceType
		}
		return "Resource" // unreadable: only a scope reading every type reads it
	}
	if e.Request != nil {
		if typ, _, _ := strings.Cut(strings.TrimPrefix(e.Request.URL, "/"), "/"); routing.IsResourceType(typ) {
			return typ
		}
	}
	return ""
}

// entryAllowed reports whether a caller with scopes may see entry e of an answer about
// searched (the type whose search or history it is; "" for a system history), and the type it
// was judged by. An outcome entry is the answer's own; a match of the searched type is what
// the interaction's scope granted; anything else needs read on its type.
func entryAllowed(scopes auth.Scopes, searched string, e fhir.BundleEntry) (string, bool) {
	typ := entryResourceType(e)
	mode := ""
	if e.Search != nil {
		mode = e.Search.Mode
	}
	switch {
	case typ == "":
		return "", true
	case mode == "outcome" && typ == "OperationOutcome":
		return typ, true
	case typ == searched && mode != "include":
		return typ, true
	}
	return typ, scopes.Allows(typ, auth.Read)
}

// readableEntries keeps the entries of an answer about searched that scopes may see, counting
// the others by type in withheld.
func readableEntries(scopes auth.Scopes, searched string, entries []fhir.BundleEntry, withheld map[string]int) []fhir.BundleEntry {
	out := entries[:0:0]
	for _, e := range entries {
		if typ, ok := entryAllowed(scopes, searched, e); !ok {
			withheld[typ]++
			continue
		}
		out = append(out, e)
	}
	return out
}

// withheldEntry is the searchset entry (mode outcome) saying what was left out, if anything.
func withheldEntry(withheld map[string]int) (fhir.BundleEntry, bool) {
	oo := fhir.WithheldOutcome(withheld)
	if oo == nil {
		return fhir.BundleEntry{}, false
	}
	raw, _ := json.Marshal(oo)
	return fhir.BundleEntry{FullURL: "urn:uuid:" + uuid.NewString(), Resource: raw, Search: &fhir.EntrySearch{Mode: "outcome"}}, true
}

// withheldWarning sets a Warning header naming what was left out of an answer that has no
// place for an outcome entry (a history Bundle).
func withheldWarning(h http.Header, withheld map[string]int) {
	if oo := fhir.WithheldOutcome(withheld); oo != nil {
		msgs := make([]string, len(oo.Issue))
		for i, is := range oo.Issue {
			msgs[i] = is.Diagnostics
		}
		h.Add("Warning", `199 interop "`+strings.ReplaceAll(strings.Join(msgs, "; "), `"`, "'")+`"`)
	}
}

// filterNestedBundles filters the answer of a batch or transaction an external owner gave:
// each entry's resource is what entry i of the request (calls[i]) asked for, so a searchset
// or history in it is filtered as the search or history of calls[i].typ would be, and a
// resource of another type needs read on it. ok is false when body is not a Bundle.
func filterNestedBundles(scopes auth.Scopes, calls []fhirCall, body []byte) ([]byte, bool) {
	var b fhir.Bundle
	if err := json.Unmarshal(body, &b); err != nil || b.ResourceType != "Bundle" {
		return nil, false
	}
	changed := false
	for i := range b.Entry {
		e := &b.Entry[i]
		searched := ""
		if i < len(calls) {
			searched = calls[i].typ
		}
		if len(e.Resource) == 0 {
			continue
		}
		var inner fhir.Bundle
		if json.Unmarshal(e.Resource, &inner) == nil && inner.ResourceType == "Bundle" &&
			(inner.Type == fhir.BundleSearchset || inner.Type == "history") {
			withheld := map[string]int{}
			inner.Entry = readableEntries(scopes, searched, inner.Entry, withheld)
			if len(withheld) == 0 {
				continue
			}
			if inner.Type == fhir.BundleSearchset {
				if we, ok := withheldEntry(withheld); ok {
					inner.Entry = append(inner.Entry, we)
				}
			}
			raw, err := inner.AppendJSON(nil)
			if err != nil {
				return nil, false
			}
			e.Resource, changed = raw, true
			continue
		}
		if typ := entryResourceType(*e); typ != searched && !scopes.Allows(typ, auth.Read) {
			e.Resource, changed = nil, true
		}
	}
	if !changed {
		return body, true
	}
	out, err := b.AppendJSON(nil)
	if err != nil {
		return nil, false
	}
	return out, true
}
