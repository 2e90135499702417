// Package fhirclient writes to and reads from an owning FHIR service over HTTP. It reports an
// owner's refusals as *OwnerError so callers can tell a permanent rejection (4xx) from a
// transient failure (5xx, timeouts, refused connections) that is worth retrying.
package fhirclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/nhp/interop/internal/fhir"
	"github.com/nhp/interop/internal/netguard"
)

// Client talks to one owner's FHIR base URL.
type Client struct {
	BaseURL string
	// HTTP sends the requests; nil means a client through the strict owner guard (netguard).
	HTTP *http.Client
	// Authorization, when set, is sent as the Authorization header of every request.
	Authorization string
}

// OwnerError is an owner's non-success answer.
type OwnerError struct {
	Status int
	// Diagnostics is the first issue's text of the owner's OperationOutcome, if it sent one.
	Diagnostics string
}

func (e *OwnerError) Error() string {
	if e.Diagnostics != "" {
		return fmt.Sprintf("owner answered %d: %s", e.Status, e.Diagnostics)
	}
	return fmt.Sprintf("owner answered %d", e.Status)
}

// Permanent reports whether resending the same request cannot succeed: a 4xx other than
// 408 (timeout) and 429 (throttled).
func (e *OwnerError) Permanent() bool {
	return e.Status >= 400 && e.Status < 500 && e.Status != http.StatusRequestTimeout && e.Status != http.StatusTooManyRequests
}

// IsPermanent reports whether err is an owner's permanent refusal.
func IsPermanent(err error) bool {
	var oe *OwnerError
	return errors.As(err, &oe) && oe.Permanent()
}

// WriteResult is what an owner reported about a write.
type WriteResult struct {
	ID        string
	VersionID string
	// Created is false when a conditional create found an existing resource.
	Created bool
	// Stale is set by ConditionalUpdateNewest when the owner's resource comes from a newer
	// source event: nothing was written.
	Stale bool
	// Unchanged is set by ConditionalPatch when the patch changed nothing: nothing was written.
	Unchanged bool
}

// ConditionalCreate POSTs body with If-None-Exist: identifier=<ident>.
func (c *Client) ConditionalCreate(ctx context.Context, resourceType string, body []byte, ident fhir.Identifier) (WriteResult, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url(resourceType), bytes.NewReader(body))
	if err != nil {
		return WriteResult{}, fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("If-None-Exist", "identifier="+url.QueryEscape(ident.Token()))
	req.Header.Set("Prefer", "return=minimal")
	resp, err := c.do(req)
	if err != nil {
		return WriteResult{}, err
	}
	created := resp.StatusCode == http.StatusCreated
	id, version := parseLocation(resp.Header.Get("Location"), resourceType)
	if id == "" {
		id, version = parseLocation(resp.Header.Get("Content-Location"), resourceType)
	}
	if id == "" && !created {
		// FHIR asks nothing but 200 of a conditional create that found its match (the
		// built-in store's server sends no Location then): the match is looked up.
		cur, found, err := c.findOne(ctx, resourceType, ident)
		if err != nil {
			return WriteResult{}, err
		}
		if found {
			id, version = cur.id, cur.version
		}
	}
	if id == "" {
		return WriteResult{}, fmt.Errorf("owner answered %d without a Location for %s", resp.StatusCode, resourceType)
	}
	return WriteResult{ID: id, VersionID: version, Created: created}, nil
}

// ConditionalUpdate PUTs body to Type?identifier=<ident>: the owner updates the match or
// creates the resource.
func (c *Client) ConditionalUpdate(ctx context.Context, resourceType string, body []byte, ident fhir.Identifier) (WriteResult, error) {
	target := c.url(resourceType) + "?identifier=" + url.QueryEscape(ident.Token())
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, target, bytes.NewReader(body))
	if err != nil {
		return WriteResult{}, fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Prefer", "return=minimal")
	resp, err := c.do(req)
	if err != nil {
		return WriteResult{}, err
	}
	id, version := parseLocation(resp.Header.Get("Location"), resourceType)
	if id == "" {
		id, version = parseLocation(resp.Header.Get("Content-Location"), resourceType)
	}
	if id == "" {
		return WriteResult{}, fmt.Errorf("owner answered %d without a Location for %s", resp.StatusCode, resourceType)
	}
	return WriteResult{ID: id, VersionID: version, Created: resp.StatusCode == http.StatusCreated}, nil
}

func (c *Client) url(path string) string {
	return strings.TrimRight(c.BaseURL, "/") + "/" + path
}

// do sends a write: its response body is read (its first MiB) and closed.
func (c *Client) do(req *http.Request) (*http.Response, error) {
	req.Header.Set("Content-Type", fhir.MediaType)
	resp, err := c.roundTrip(req)
	if err != nil {
		return nil, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	return resp, nil
}

// roundTrip sends req asking for FHIR JSON, with the client's Authorization, and returns a
// 2xx response with its body open for the caller to read and close. Any other answer is an
// *OwnerError carrying its OperationOutcome's diagnostics (read from the first MiB); a
// transport failure is returned wrapped with the method and the redacted URL.
func (c *Client) roundTrip(req *http.Request) (*http.Response, error) {
	req.Header.Set("Accept", fhir.MediaType)
	if c.Authorization != "" {
		req.Header.Set("Authorization", c.Authorization)
	}
	hc := c.HTTP
	if hc == nil {
		hc = strictClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", req.Method, req.URL.Redacted(), err)
	}
	if resp.StatusCode < 200 || resp.StatusCode >= 300 {
		defer resp.Body.Close()
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return nil, &OwnerError{Status: resp.StatusCode, Diagnostics: diagnostics(body)}
	}
	return resp, nil
}

// strictClient is the client of a Client without one: no loopback, private, link-local or
// metadata address.
var strictClient = (*netguard.Policy)(nil).Client(0)

func diagnostics(body []byte) string {
	var oo fhir.OperationOutcome
	if json.Unmarshal(body, &oo) != nil || oo.ResourceType != "OperationOutcome" || len(oo.Issue) == 0 {
		return ""
	}
	return oo.Issue[0].Diagnostics
}

// parseLocation reads "…/Type/id/_history/v" (absolute or relative).
func parseLocation(loc, resourceType string) (id, version string) {
	parts := strings.Split(strings.Trim(loc, "/"), "/")
	for i := len(parts) - 2; i >= 0; i-- {
		if parts[i] == resourceType {
			id = parts[i+1]
			if i+3 < len(parts) && parts[i+2] == "_history" {
				version = parts[i+3]
			}
			return id, version
		}
	}
	return "", ""
}
