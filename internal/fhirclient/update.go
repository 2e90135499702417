package fhirclient

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/url"

	"github.com/nhp/interop/internal/fhir"
)

// Update PUTs body to Type/id (FHIR update): the owner replaces that resource, or creates it
// with the client's id. Owners that refuse client-assigned ids answer 4xx, a permanent error.
func (c *Client) Update(ctx context.Context, resourceType, id string, body []byte) (WriteResult, error) {
	return c.put(ctx, resourceType, id, body, "")
}

// put is Update on condition that the stored version is ifMatch (an ETag), when it is given.
func (c *Client) put(ctx context.Context, resourceType, id string, body []byte, ifMatch string) (WriteResult, error) {
	// FHIR update: the body carries the id of its URL, or the owner must refuse it. A body
	// that does is sent as it is.
	if head, err := fhir.ReadHead(body); err != nil || head.ID != id {
		if body, err = setID(body, id); err != nil {
			return WriteResult{}, err
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, c.url(resourceType+"/"+url.PathEscape(id)), bytes.NewReader(body))
	if err != nil {
		return WriteResult{}, fmt.Errorf("build request: %w", err)
	}
	if ifMatch != "" {
		req.Header.Set("If-Match", ifMatch)
	}
	req.Header.Set("Prefer", "return=minimal")
	resp, err := c.do(req)
	if err != nil {
		return WriteResult{}, err
	}
	// The id is the client's; a Location, when the owner sends one, adds the version.
	_, version := parseLocation(resp.Header.Get("Location"), resourceType)
	if version == "" {
		_, version = parseLocation(resp.Header.Get("Content-Location"), resourceType)
	}
	return WriteResult{ID: id, VersionID: version, Created: resp.StatusCode == http.StatusCreated}, nil
}
