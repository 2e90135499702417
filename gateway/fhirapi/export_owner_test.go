package fhirapi

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"

	"github.com/nhp/interop/internal/blobstore"
)

// refusingTemporal starts no workflow: a kick-off that passes every check ends in 503.
type refusingTemporal struct {
	client.Client
	starts atomic.Int32
}

func (r *refusingTemporal) ExecuteWorkflow(context.Context, client.StartWorkflowOptions, any, ...any) (client.WorkflowRun, error) {
	r.starts.Add(1)
	return nil, errors.New("no Temporal in this test")
}

// A kick-off may name types another service owns: their _typeFilter queries are that
// service's to check, but one type gets one query; an export without _type is refused when
// unnamed types default to another service.
func TestExportKickoffWithExternalOwners(t *testing.T) {
	t.Parallel()
	bucket, err := blobstore.Open(context.Background(), "", t.TempDir())
	require.NoError(t, err)
	t.Cleanup(func() { _ = bucket.Close() })
	temporal := &refusingTemporal{}
	s := newAPIServer(t, func(d *Deps) {
		d.Exports.Bucket = bucket
		d.Temporal = temporal
		d.TaskQueue = "test"
	})
	_, err = s.pool.Exec(context.Background(), `INSERT INTO fhir_routing_rules (tenant_id, resource_type, owner_url) VALUES ($1, 'Observation', 'http://owner.invalid')`, apiTenantA)
	require.NoError(t, err)
	tok := s.token(apiTenantA, "system/*.rs")
	kickoff := func(query string) (int, string) {
		rec := s.do(apiRequest{path: "/fhir/$export?" + query, token: tok, header: map[string]string{"Prefer": "respond-async"}})
		return rec.Code, rec.Body.String()
	}
	filter := func(qs ...string) string {
		v := ""
		for i, q := range qs {
			if i > 0 {
				v += ","
			}
			v += q
		}
		return "_typeFilter=" + url.QueryEscape(v)
	}

	code, body := kickoff("_type=Observation&" + filter("Observation?status=final", "Observation?status=preliminary"))
	require.Equal(t, http.StatusBadRequest, code, body)
	require.Contains(t, body, "would be exported twice")
	require.Contains(t, body, "not-supported")
	require.NotContains(t, body, "owner.invalid")

	// A parameter the built-in store does not know is the owner's business.
	code, body = kickoff("_type=Observation&" + filter("Observation?owner-only-param=x"))
	require.Equal(t, http.StatusServiceUnavailable, code, body)
	code, body = kickoff("_type=Observation,Patient")
	require.Equal(t, http.StatusServiceUnavailable, code, body)
	require.EqualValues(t, 2, temporal.starts.Load(), "both passed the checks")
	// The built-in store still checks its own.
	code, body = kickoff("_type=Patient&" + filter("Patient?owner-only-param=x"))
	require.Equal(t, http.StatusBadRequest, code, body)

	code, body = kickoff("")
	require.Equal(t, http.StatusServiceUnavailable, code, "without _type: the built-in store's types and Observation: %s", body)
	_, err = s.pool.Exec(context.Background(), `INSERT INTO fhir_routing_rules (tenant_id, resource_type, owner_url) VALUES ($1, '*', 'http://owner.invalid')`, apiTenantA)
	require.NoError(t, err)
	code, body = kickoff("")
	require.Equal(t, http.StatusNotImplemented, code, body)
	require.Contains(t, body, "name the types with _type")
	code, body = kickoff("_type=Patient")
	require.Equal(t, http.StatusServiceUnavailable, code, body)
}
