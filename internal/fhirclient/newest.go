package fhirclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/nhp/interop/internal/fhir"
)

// ErrOwnerKeptChanging is returned when the matched resource changed under every try of
// ConditionalUpdateNewest: a transient condition, worth retrying later.
var ErrOwnerKeptChanging = errors.New("the owner's resource kept changing during the update")

// newestTries bounds the read-compare-write rounds of ConditionalUpdateNewest.
const newestTries = 4

// ConditionalUpdateNewest is ConditionalUpdate that never lets an older source event overwrite
// state from a newer one, whatever the owner does about it: it reads the resource carrying
// ident, compares fhir.SourceEventTime, and writes it by id with If-Match on the version it
// read, so that a concurrent writer makes it read and compare again instead of being
// overwritten. The result is Stale when the stored resource comes from a newer event, and
// Unchanged when it already holds what body says; in both cases nothing is written. A body
// without a source event time is never stale.
func (c *Client) ConditionalUpdateNewest(ctx context.Context, resourceType string, body []byte, ident fhir.Identifier) (WriteResult, error) {
	return c.readDecideWrite(ctx, resourceType, ident, func([]byte) ([]byte, error) {
		return body, nil
	})
}

// ConditionalUpdateMerge is ConditionalUpdate of what merge makes of the owner's resource:
// it reads the resource carrying ident, has merge compute the body to write from it (nil
// when none matches: merge(nil) is created by a conditional update), and writes that by id
// with If-Match on the version it read, reading and merging again when another writer came
// between. merge decides what a newer stored source event keeps (fhir.MergeLists); a merge
// whose source event is still older than the stored one's is Stale, one that changes nothing
// Unchanged, and neither is written.
func (c *Client) ConditionalUpdateMerge(ctx context.Context, resourceType string, ident fhir.Identifier, merge func(stored []byte) ([]byte, error)) (WriteResult, error) {
	return c.readDecideWrite(ctx, resourceType, ident, merge)
}

// readDecideWrite reads the resource carrying ident, has decide make the body to write from
// it (stored is nil when none matches), and writes that: by a conditional update when none
// matched, else by id with If-Match on the version read, unless the body is from an older
// source event than the stored one (Stale) or holds the same content (Unchanged). A writer
// coming between the read and the write makes it read and decide again.
func (c *Client) readDecideWrite(ctx context.Context, resourceType string, ident fhir.Identifier, decide func(stored []byte) ([]byte, error)) (WriteResult, error) {
	for range newestTries {
		cur, found, err := c.findOne(ctx, resourceType, ident)
		if err != nil {
			return WriteResult{}, err
		}
		var stored []byte
		if found {
			stored = cur.body
		}
		body, err := decide(stored)
		if err != nil {
			return WriteResult{}, err
		}
		if !found {
			// Nothing to protect: the owner's conditional update creates it (or, should
			// another writer have created it meanwhile, updates that one).
			return c.ConditionalUpdate(ctx, resourceType, body, ident)
		}
		if olderEvent(body, cur.body) {
			return WriteResult{ID: cur.id, VersionID: cur.version, Stale: true}, nil
		}
		if fhir.SameContent(cur.body, body) {
			return WriteResult{ID: cur.id, VersionID: cur.version, Unchanged: true}, nil
		}
		res, err := c.updateIfMatch(ctx, resourceType, cur, body)
		var oe *OwnerError
		if errors.As(err, &oe) && (oe.Status == http.StatusPreconditionFailed || oe.Status == http.StatusConflict) {
			continue // changed since it was read: decide again
		}
		return res, err
	}
	return WriteResult{}, fmt.Errorf("%s %s: %w", resourceType, ident.Token(), ErrOwnerKeptChanging)
}

// olderEvent reports whether incoming describes an event older than the stored resource's.
func olderEvent(incoming, stored []byte) bool {
	in, okIn := fhir.SourceEventTime(incoming)
	st, okSt := fhir.SourceEventTime(stored)
	return okIn && okSt && in.Before(st)
}

type storedResource struct {
	id, version string
	body        json.RawMessage
}

// findOne searches resourceType by ident: none, one, or a permanent 412 for several.
func (c *Client) findOne(ctx context.Context, resourceType string, ident fhir.Identifier) (storedResource, bool, error) {
	target := c.url(resourceType) + "?identifier=" + url.QueryEscape(ident.Token()) + "&_count=2"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return storedResource{}, false, fmt.Errorf("build request: %w", err)
	}
	var b struct {
		ResourceType string `json:"resourceType"`
		Entry        []struct {
			Resource json.RawMessage `json:"resource"`
			Search   *struct {
				Mode string `json:"mode"`
			} `json:"search"`
		} `json:"entry"`
	}
	if err := c.getJSON(req, &b); err != nil {
		return storedResource{}, false, err
	}
	if b.ResourceType != "Bundle" {
		return storedResource{}, false, fmt.Errorf("search %s: the owner answered a %q, not a Bundle", resourceType, b.ResourceType)
	}
	var matches []json.RawMessage
	for _, e := range b.Entry {
		if e.Search == nil || e.Search.Mode == "" || e.Search.Mode == "match" {
			matches = append(matches, e.Resource)
		}
	}
	switch len(matches) {
	case 0:
		return storedResource{}, false, nil
	case 1:
	default:
		return storedResource{}, false, &OwnerError{Status: http.StatusPreconditionFailed,
			Diagnostics: fmt.Sprintf("more than one %s carries identifier %s", resourceType, ident.Token())}
	}
	var head struct {
		ID   string `json:"id"`
		Meta struct {
			VersionID string `json:"versionId"`
		} `json:"meta"`
	}
	if err := json.Unmarshal(matches[0], &head); err != nil || head.ID == "" {
		return storedResource{}, false, fmt.Errorf("search %s: the owner's match has no id", resourceType)
	}
	return storedResource{id: head.ID, version: head.Meta.VersionID, body: matches[0]}, true, nil
}

// updateIfMatch PUTs body (given cur's id) to cur, on condition that it is still the version
// read. An owner that does not version resources gets no If-Match: the comparison then
// guards all but a write landing between the read and this one.
func (c *Client) updateIfMatch(ctx context.Context, resourceType string, cur storedResource, body []byte) (WriteResult, error) {
	withID, err := setID(body, cur.id)
	if err != nil {
		return WriteResult{}, err
	}
	var ifMatch string
	if cur.version != "" {
		ifMatch = `W/"` + cur.version + `"`
	}
	return c.put(ctx, resourceType, cur.id, withID, ifMatch)
}

// setID returns body with its id set to id.
func setID(body []byte, id string) ([]byte, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, fmt.Errorf("%w: %v", fhir.ErrInvalidResource, err)
	}
	raw, _ := json.Marshal(id)
	m["id"] = raw
	return json.Marshal(m)
}

// getJSON runs req and decodes a successful answer (at most 8 MiB) into dst.
func (c *Client) getJSON(req *http.Request, dst any) error {
	resp, err := c.roundTrip(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return fmt.Errorf("%s %s: %w", req.Method, req.URL.Redacted(), err)
	}
	if err := json.Unmarshal(body, dst); err != nil {
		return fmt.Errorf("%s %s: unreadable answer: %w", req.Method, req.URL.Redacted(), err)
	}
	return nil
}
