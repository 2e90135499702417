package fhirclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/nhp/interop/internal/fhir"
)

// ErrNoMatch is returned by ConditionalPatch when no resource carries the identifier: a patch
// creates nothing.
var ErrNoMatch = errors.New("no resource carries the identifier")

// ConditionalPatch applies a FHIRPath Patch (fhir.ApplyPatch) to the owner's resource that
// carries ident: it reads the resource, patches it here and writes it back by id with
// If-Match on the version it read, reading again when a concurrent writer came first. A
// read and an update work with every owner, where support for PATCH and for FHIRPath Patch
// varies. Nothing is written when the patch changes nothing (Unchanged).
func (c *Client) ConditionalPatch(ctx context.Context, resourceType string, patch []byte, ident fhir.Identifier) (WriteResult, error) {
	for range newestTries {
		cur, found, err := c.findOne(ctx, resourceType, ident)
		if err != nil {
			return WriteResult{}, err
		}
		if !found {
			return WriteResult{}, fmt.Errorf("%s %s: %w", resourceType, ident.Token(), ErrNoMatch)
		}
		patched, err := fhir.ApplyPatch(cur.body, patch)
		if err != nil {
			return WriteResult{}, fmt.Errorf("patch %s/%s: %w", resourceType, cur.id, err)
		}
		if sameJSON(cur.body, patched) {
			return WriteResult{ID: cur.id, VersionID: cur.version, Unchanged: true}, nil
		}
		res, err := c.updateIfMatch(ctx, resourceType, cur, patched)
		var oe *OwnerError
		if errors.As(err, &oe) && (oe.Status == http.StatusPreconditionFailed || oe.Status == http.StatusConflict) {
			continue // changed since it was read: patch the new version
		}
		return res, err
	}
	return WriteResult{}, fmt.Errorf("%s %s: %w", resourceType, ident.Token(), ErrOwnerKeptChanging)
}

// sameJSON reports whether a and b are the same JSON value, whatever their key order and
// spacing.
func sameJSON(a, b []byte) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	ca, errA := json.Marshal(x)
	cb, errB := json.Marshal(y)
	return errA == nil && errB == nil && bytes.Equal(ca, cb)
}
