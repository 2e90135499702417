package fhirclient

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// ErrNotUnderBase is a URL outside the owner's base URL, such as a next link to another server:
// the client does not request it, so that its Authorization is only ever sent to the owner.
var ErrNotUnderBase = errors.New("url is not under the owner's base URL")

// Open GETs target, an absolute URL under BaseURL (a search the caller built, or a link the
// owner answered with), asking for FHIR JSON with header added, and returns a 2xx response
// with its body open: the caller reads it and closes it. Any other answer is an *OwnerError
// (its OperationOutcome read from the first MiB); a transport failure is returned wrapped.
func (c *Client) Open(ctx context.Context, target string, header http.Header) (*http.Response, error) {
	if !c.UnderBase(target) {
		return nil, ErrNotUnderBase
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	return c.roundTrip(req)
}

// UnderBase reports whether target is an absolute URL under BaseURL: the same scheme and host,
// and a path below the base's path.
func (c *Client) UnderBase(target string) bool {
	base, err := url.Parse(strings.TrimRight(c.BaseURL, "/"))
	if err != nil {
		return false
	}
	u, err := url.Parse(target)
	if err != nil || u.User != nil {
		return false
	}
	return strings.EqualFold(u.Scheme, base.Scheme) && strings.EqualFold(u.Host, base.Host) &&
		(u.Path == base.Path || strings.HasPrefix(u.Path, base.Path+"/"))
}
