package fhir

import (
	"encoding/json"
	"fmt"
	"unicode/utf8"
)

// Bundle is a FHIR Bundle whose resources stay raw JSON.
type Bundle struct {
	ResourceType string        `json:"resourceType"`
	ID           string        `json:"id,omitempty"`
	Meta         *Meta         `json:"meta,omitempty"`
	Type         string        `json:"type"`
	Timestamp    string        `json:"timestamp,omitempty"`
	Total        *int          `json:"total,omitempty"`
	Link         []BundleLink  `json:"link,omitempty"`
	Entry        []BundleEntry `json:"entry,omitempty"`
}

// Meta is Resource.meta, the parts the service sets.
type Meta struct {
	Extension   []Extension `json:"extension,omitempty"`
	VersionID   string      `json:"versionId,omitempty"`
	LastUpdated string      `json:"lastUpdated,omitempty"`
	Profile     []string    `json:"profile,omitempty"`
}

// BundleLink is Bundle.link (self, next, previous).
type BundleLink struct {
	Relation string `json:"relation"`
	URL      string `json:"url"`
}

// BundleEntry is Bundle.entry.
type BundleEntry struct {
	FullURL  string          `json:"fullUrl,omitempty"`
	Resource json.RawMessage `json:"resource,omitempty"`
	Search   *EntrySearch    `json:"search,omitempty"`
	Request  *EntryRequest   `json:"request,omitempty"`
	Response *EntryResponse  `json:"response,omitempty"`
}

// EntrySearch is Bundle.entry.search.
type EntrySearch struct {
	Mode string `json:"mode"`
}

// EntryRequest is Bundle.entry.request of a batch or transaction.
type EntryRequest struct {
	Method      string `json:"method"`
	URL         string `json:"url"`
	IfNoneExist string `json:"ifNoneExist,omitempty"`
	IfMatch     string `json:"ifMatch,omitempty"`
}

// EntryResponse is Bundle.entry.response of a batch-response or transaction-response.
type EntryResponse struct {
	Status       string          `json:"status"`
	Location     string          `json:"location,omitempty"`
	Etag         string          `json:"etag,omitempty"`
	LastModified string          `json:"lastModified,omitempty"`
	Outcome      json.RawMessage `json:"outcome,omitempty"`
}

// Bundle types the service produces.
const (
	BundleTransaction         = "transaction"
	BundleTransactionResponse = "transaction-response"
	BundleSearchset           = "searchset"
)

// AppendJSON appends b as compact JSON to dst: the bytes json.Marshal gives, without its cost.
// json.Marshal validates and re-compacts every json.RawMessage, which for a mapped Bundle is
// a second pass over nearly all of it; AppendJSON copies each entry's Resource as it is. So
// each Resource must already be one compact JSON value, as json.Marshal and Encoder produce
// (a Resource read from elsewhere, e.g. PostgreSQL JSONB text, is still valid JSON but keeps
// its whitespace).
func (b *Bundle) AppendJSON(dst []byte) ([]byte, error) {
	// The envelope is small: let encoding/json write it, with entry (its last field) left
	// out, and splice the entries in before the closing brace. "type" is never omitted, so
	// the envelope is never "{}" and the comma is always right.
	env := *b
	env.Entry = nil
	head, err := json.Marshal(&env)
	if err != nil {
		return dst, err
	}
	if len(b.Entry) == 0 {
		return append(dst, head...), nil
	}
	dst = append(dst, head[:len(head)-1]...)
	dst = append(dst, `,"entry":[`...)
	for i := range b.Entry {
		if i > 0 {
			dst = append(dst, ',')
		}
		if dst, err = b.Entry[i].appendJSON(dst); err != nil {
			return dst, fmt.Errorf("entry %d: %w", i, err)
		}
	}
	return append(dst, "]}"...), nil
}

func (e *BundleEntry) appendJSON(dst []byte) ([]byte, error) {
	start := len(dst)
	dst = append(dst, '{')
	// field opens member name, after a comma unless it is the object's first.
	field := func(dst []byte, name string) []byte {
		if len(dst) > start+1 {
			dst = append(dst, ',')
		}
		dst = append(dst, '"')
		dst = append(dst, name...)
		return append(dst, `":`...)
	}
	if e.FullURL != "" {
		dst = field(dst, "fullUrl")
		dst = appendString(dst, e.FullURL)
	}
	if len(e.Resource) > 0 {
		dst = field(dst, "resource")
		dst = append(dst, e.Resource...)
	}
	// search and response do not occur in the Bundles the service writes at volume.
	if e.Search != nil {
		dst = field(dst, "search")
		raw, err := json.Marshal(e.Search)
		if err != nil {
			return dst, err
		}
		dst = append(dst, raw...)
	}
	if r := e.Request; r != nil {
		dst = field(dst, "request")
		dst = append(dst, `{"method":`...)
		dst = appendString(dst, r.Method)
		dst = append(dst, `,"url":`...)
		dst = appendString(dst, r.URL)
		if r.IfNoneExist != "" {
			dst = append(dst, `,"ifNoneExist":`...)
			dst = appendString(dst, r.IfNoneExist)
		}
		if r.IfMatch != "" {
			dst = append(dst, `,"ifMatch":`...)
			dst = appendString(dst, r.IfMatch)
		}
		dst = append(dst, '}')
	}
	if e.Response != nil {
		dst = field(dst, "response")
		raw, err := json.Marshal(e.Response)
		if err != nil {
			return dst, err
		}
		dst = append(dst, raw...)
	}
	return append(dst, '}'), nil
}

// appendString appends s as a JSON string exactly as encoding/json writes it (HTML-safe).
// Strings that need no escaping, nearly all of them, are copied; the rest go through
// encoding/json so that its escaping rules hold without being restated here.
func appendString(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= utf8.RuneSelf || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			raw, _ := json.Marshal(s) // a string always marshals
			return append(dst, raw...)
		}
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"')
}

// CheckFullURLs enforces bdl-7 on a batch or transaction: a fullUrl names one entry, unless
// the entries that share it carry different meta.versionId. Two entries of one fullUrl would
// otherwise make references to it (urn:uuid:…) point at whichever was written last.
func CheckFullURLs(b Bundle) error {
	seen := make(map[string]int, len(b.Entry))
	for i, e := range b.Entry {
		if e.FullURL == "" {
			continue
		}
		var meta struct {
			Meta struct {
				VersionID string `json:"versionId"`
			} `json:"meta"`
		}
		if len(e.Resource) > 0 {
			_ = json.Unmarshal(e.Resource, &meta) // a malformed resource is its entry's own error
		}
		key := e.FullURL + "\x00" + meta.Meta.VersionID
		if j, dup := seen[key]; dup {
			return fmt.Errorf("entries %d and %d have the same fullUrl %q: a fullUrl names one entry (bdl-7)", j, i, e.FullURL)
		}
		seen[key] = i
	}
	return nil
}
