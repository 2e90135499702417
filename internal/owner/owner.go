// Package owner is the service that owns a resource type (the domain model's
// ResourceOwnership: a FhirRoutingRule names it): the built-in store, in-process (Builtin), or
// a FHIR server over HTTP (Remote). Callers — the Route step's idempotent writes, the bulk
// export's paged reading and the FHIR API's forwarding — hold an Owner from a Resolver and do
// not know which kind it is: both keep the same rules (newest event wins, conditional writes
// by business identifier, paging by next link, permanent refusals told from transient
// failures), which one conformance suite (ownertest) checks against both.
package owner

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"

	"github.com/nhp/interop/internal/fhir"
)

// Owner is the service that owns a resource type for one tenant.
type Owner interface {
	// Label is how the routing table names the owner: routing.Builtin or its base URL.
	Label() string
	// BaseURL is the base of the owner's URLs: Locations, fullUrls and paging links in its
	// answers are under it.
	BaseURL() string

	// Update writes body as typ/id (FHIR update): Created, Updated, or Unchanged where the
	// owner can tell that the content is the same (the FHIR update interaction's answer does
	// not say, so a Remote reports Updated).
	Update(ctx context.Context, typ, id string, body []byte) (WriteResult, error)
	// ConditionalCreate creates body unless a typ carries ident (Unchanged, its id).
	ConditionalCreate(ctx context.Context, typ string, body []byte, ident fhir.Identifier) (WriteResult, error)
	// ConditionalUpdate writes body over the typ that carries ident, or creates it: newest
	// wins, so a body from an older source event (fhir.SourceEventTime) than the stored one is
	// Stale and not applied; one with the stored content is Unchanged.
	ConditionalUpdate(ctx context.Context, typ string, body []byte, ident fhir.Identifier) (WriteResult, error)
	// ConditionalUpdateMerge is ConditionalUpdate of what merge makes of the stored resource
	// (nil when none carries ident): lists merged across messages (fhir.MergeLists). A merge
	// still older than the stored event is Stale.
	ConditionalUpdateMerge(ctx context.Context, typ string, body []byte, ident fhir.Identifier, merge MergeFunc) (WriteResult, error)
	// ConditionalPatch applies a FHIRPath Patch (a Parameters body) to the typ that carries
	// ident: Updated, or Unchanged when it changes nothing; never Stale. None carrying ident
	// is ErrTargetMissing: a patch creates nothing.
	ConditionalPatch(ctx context.Context, typ string, patch []byte, ident fhir.Identifier) (WriteResult, error)

	// SearchURL is the link to the first page of typ's search with query.
	SearchURL(typ string, query url.Values) string
	// OpenPage fetches one page of a search (SearchURL's link or a page's next link), asking
	// the owner to refuse parameters it does not support (Prefer: handling=strict), and
	// refuses a page of more than maxBytes (ErrPageTooLarge).
	OpenPage(ctx context.Context, link string, maxBytes int64) (*Page, error)

	// Do sends one FHIR REST interaction and returns the answer read whole, whatever its
	// status: the FHIR API's forwarding. Transport failures are ErrTimeout, ErrUnreachable
	// or ErrTooLarge.
	Do(ctx context.Context, r Request) (*Response, error)
}

// MergeFunc makes the body to write from the stored resource (nil when there is none).
type MergeFunc func(stored []byte) ([]byte, error)

// Action says what a write did to the owner's state. The values are the Hl7ResourceLink
// actions.
type Action string

// Actions of a write.
const (
	Created   Action = "created"
	Updated   Action = "updated"
	Unchanged Action = "unchanged"
)

// WriteResult is what an owner did with a write.
type WriteResult struct {
	ID     string
	Action Action
	// Stale is set (with Action Unchanged) when an update was not applied because the owner
	// holds state from a newer source event.
	Stale bool
}

// Request is one FHIR REST interaction, relative to the owner's base URL.
type Request struct {
	Method string
	// Path starts with "/" (e.g. "/Patient/123"); Query is encoded, without '?'.
	Path, Query string
	Header      http.Header
	Body        []byte
}

// Response is an owner's answer, read whole.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
	// Trusted is set when the body needs no check that it is FHIR JSON: the built-in store
	// wrote it with encoding/json.
	Trusted bool
}

// Page is one page of a search, open for reading; Close it.
type Page struct {
	link      string
	body      io.Reader
	close     func() error
	maxBytes  int64
	underBase func(string) bool
}

// Close releases the page's answer.
func (p *Page) Close() error { return p.close() }

// Matches calls fn with each match of the page (entries of search mode include or outcome are
// skipped), decoding the Bundle as a stream, one entry in memory at a time, and returns the
// next page's link, resolved against this page's and checked to be under the owner's base
// ("" on the last page). An answer that is not a searchset Bundle is ErrNotSearchset; fn's
// errors end the reading and are returned as they are.
func (p *Page) Matches(fn func(resource json.RawMessage) error) (next string, err error) {
	next, err = readSearchset(&cappedReader{r: p.body, left: p.maxBytes}, fn)
	if err != nil || next == "" {
		return "", err
	}
	ref, err := url.Parse(next)
	if err != nil {
		return "", &notSearchset{"unreadable next link"}
	}
	base, _ := url.Parse(p.link)
	next = base.ResolveReference(ref).String()
	if !p.underBase(next) {
		return "", ErrNotUnderBase
	}
	return next, nil
}
