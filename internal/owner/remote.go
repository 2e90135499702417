package owner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/nhp/interop/internal/fhir"
	"github.com/nhp/interop/internal/fhirclient"
	"github.com/nhp/interop/internal/netguard"
)

// Remote is a FHIR server over HTTP as one tenant's owner (internal/fhirclient). The guards the
// built-in store keeps under a row lock are kept here by reading first and writing by id with
// If-Match on the version read: newest event wins, merges and patches lose no concurrent
// write, and a write that changes nothing is not sent.
type Remote struct {
	// Base is the owner's base URL, as the routing table names it.
	Base string
	// HTTP reaches the owner; nil means a client through the strict owner guard (netguard:
	// no loopback, private, link-local or metadata address).
	HTTP *http.Client
	// Token, when set, mints the bearer token of a request that carries none, with the scope
	// the operation needs (the worker's; the FHIR API forwards its caller's instead).
	Token func(ctx context.Context, scope string) (string, error)
	// MaxResponseBytes bounds an answer Do reads whole.
	MaxResponseBytes int64
}

// Scopes the worker's requests to a remote owner ask for.
const (
	scopeWrite = "system/*.cru"
	scopeRead  = "system/*.rs"
)

// Label is the owner's base URL.
func (r *Remote) Label() string { return r.Base }

// BaseURL is the owner's base URL.
func (r *Remote) BaseURL() string { return r.Base }

func (r *Remote) client(ctx context.Context, scope string) (*fhirclient.Client, error) {
	c := &fhirclient.Client{BaseURL: r.Base, HTTP: r.httpClient()}
	if r.Token != nil {
		tok, err := r.Token(ctx, scope)
		if err != nil {
			return nil, fmt.Errorf("token for owner %s: %w", r.Base, err)
		}
		c.Authorization = "Bearer " + tok
	}
	return c, nil
}

// write runs one write with a client, classifying its failure; update tells an update (which
// reports Updated when it wrote) from a create (which reports Unchanged when it found one).
func (r *Remote) write(ctx context.Context, what string, update bool, fn func(c *fhirclient.Client) (fhirclient.WriteResult, error)) (WriteResult, error) {
	c, err := r.client(ctx, scopeWrite)
	if err != nil {
		return WriteResult{}, err
	}
	res, err := fn(c)
	switch {
	case errors.Is(err, fhirclient.ErrNoMatch):
		return WriteResult{}, fmt.Errorf("%s: %w", err.Error(), ErrTargetMissing)
	case fhirclient.IsPermanent(err), errors.Is(err, fhir.ErrInvalidResource), errors.Is(err, netguard.ErrRefused):
		// An owner address the guard refuses stays refused until an operator allows it.
		return WriteResult{}, refused(r.Base, what, err)
	case err != nil:
		return WriteResult{}, fmt.Errorf("owner %s: %w", r.Base, err)
	case res.Stale:
		return WriteResult{ID: res.ID, Action: Unchanged, Stale: true}, nil
	case res.Unchanged:
		return WriteResult{ID: res.ID, Action: Unchanged}, nil
	case res.Created:
		return WriteResult{ID: res.ID, Action: Created}, nil
	case update:
		return WriteResult{ID: res.ID, Action: Updated}, nil
	}
	return WriteResult{ID: res.ID, Action: Unchanged}, nil
}

// Update PUTs body to typ/id.
func (r *Remote) Update(ctx context.Context, typ, id string, body []byte) (WriteResult, error) {
	return r.write(ctx, typ, true, func(c *fhirclient.Client) (fhirclient.WriteResult, error) {
		return c.Update(ctx, typ, id, body)
	})
}

// ConditionalCreate POSTs body with If-None-Exist.
func (r *Remote) ConditionalCreate(ctx context.Context, typ string, body []byte, ident fhir.Identifier) (WriteResult, error) {
	return r.write(ctx, typ, false, func(c *fhirclient.Client) (fhirclient.WriteResult, error) {
		return c.ConditionalCreate(ctx, typ, body, ident)
	})
}

// ConditionalUpdate reads, compares source event times and writes on the version read
// (fhirclient.ConditionalUpdateNewest).
func (r *Remote) ConditionalUpdate(ctx context.Context, typ string, body []byte, ident fhir.Identifier) (WriteResult, error) {
	return r.write(ctx, typ, true, func(c *fhirclient.Client) (fhirclient.WriteResult, error) {
		return c.ConditionalUpdateNewest(ctx, typ, body, ident)
	})
}

// ConditionalUpdateMerge reads, merges and writes on the version read. body is not sent:
// merge makes what is written from the owner's resource (the built-in store reads body).
func (r *Remote) ConditionalUpdateMerge(ctx context.Context, typ string, _ []byte, ident fhir.Identifier, merge MergeFunc) (WriteResult, error) {
	return r.write(ctx, typ, true, func(c *fhirclient.Client) (fhirclient.WriteResult, error) {
		return c.ConditionalUpdateMerge(ctx, typ, ident, merge)
	})
}

// ConditionalPatch reads, patches here and writes on the version read: every owner supports a
// read and an update, where support for PATCH and FHIRPath Patch varies.
func (r *Remote) ConditionalPatch(ctx context.Context, typ string, patch []byte, ident fhir.Identifier) (WriteResult, error) {
	return r.write(ctx, typ+" patch", true, func(c *fhirclient.Client) (fhirclient.WriteResult, error) {
		return c.ConditionalPatch(ctx, typ, patch, ident)
	})
}

// SearchURL is typ's search under the owner's base.
func (r *Remote) SearchURL(typ string, query url.Values) string {
	return strings.TrimRight(r.Base, "/") + "/" + typ + "?" + query.Encode()
}

// OpenPage GETs one page; its body is read as Matches asks for it.
func (r *Remote) OpenPage(ctx context.Context, link string, maxBytes int64) (*Page, error) {
	c, err := r.client(ctx, scopeRead)
	if err != nil {
		return nil, err
	}
	resp, err := c.Open(ctx, link, http.Header{"Prefer": {"handling=strict"}})
	var se *StatusError
	switch {
	case errors.As(err, &se) && se.Permanent(), errors.Is(err, netguard.ErrRefused):
		return nil, refused(r.Base, "the search", err)
	case err != nil:
		return nil, err
	}
	if resp.ContentLength > maxBytes {
		resp.Body.Close()
		return nil, ErrPageTooLarge
	}
	return &Page{link: link, body: resp.Body, close: resp.Body.Close, maxBytes: maxBytes, underBase: c.UnderBase}, nil
}

// Do sends one interaction over HTTP with the request's Authorization (the FHIR API's
// caller's, which the owner verifies itself), else the worker's token.
func (r *Remote) Do(ctx context.Context, in Request) (*Response, error) {
	req, err := newRequest(ctx, r.Base, in)
	if err != nil {
		return nil, err
	}
	if req.Header.Get("Authorization") == "" && r.Token != nil {
		tok, err := r.Token(ctx, "system/*.*")
		if err != nil {
			return nil, fmt.Errorf("token for owner %s: %w", r.Base, err)
		}
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := r.httpClient().Do(req)
	if err != nil {
		return nil, transportError(ctx, err)
	}
	defer resp.Body.Close()
	limit := r.MaxResponseBytes
	if limit <= 0 {
		limit = DefaultMaxResponseBytes
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, transportError(ctx, err)
	}
	if int64(len(b)) > limit {
		return nil, ErrTooLarge
	}
	return &Response{Status: resp.StatusCode, Header: resp.Header, Body: b}, nil
}

// strictClient reaches owners for a Remote without a client of its own.
var strictClient = (*netguard.Policy)(nil).Client(0)

func (r *Remote) httpClient() *http.Client {
	if r.HTTP != nil {
		return r.HTTP
	}
	return strictClient
}

// DefaultMaxResponseBytes bounds Do's answers unless Remote.MaxResponseBytes says otherwise.
const DefaultMaxResponseBytes = 64 << 20

// transportError is ErrTimeout when ctx ran out of time, else ErrUnreachable, each with its
// cause (for the log: the owner's address is in it).
func transportError(ctx context.Context, err error) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("%w: %w", ErrTimeout, err)
	}
	return fmt.Errorf("%w: %w", ErrUnreachable, err)
}
