package fhirapi

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"

	"github.com/nhp/interop/db"
	"github.com/nhp/interop/internal/blobstore"
	"github.com/nhp/interop/internal/export"
)

// cancellingTemporal accepts every cancellation and counts them.
type cancellingTemporal struct {
	client.Client
	cancels int
}

func (c *cancellingTemporal) CancelWorkflow(context.Context, string, string) error {
	c.cancels++
	return nil
}

// Status, manifest and cancellation of an export need the scopes its kick-off needed (issue
// #14): read on every exported type (every type when _type was not given; Group too at group
// level). A token of the tenant without them gets 403, never the manifest's signed URLs, and
// cannot cancel; another tenant's job is 404 as before.
func TestExportStatusNeedsKickoffScopes(t *testing.T) {
	t.Parallel()
	bucket, err := blobstore.Open(context.Background(), "", t.TempDir())
	require.NoError(t, err)
	t.Cleanup(func() { _ = bucket.Close() })
	temporal := &cancellingTemporal{}
	s := newAPIServer(t, func(d *Deps) {
		d.Exports.Bucket = bucket
		d.Temporal = temporal
		d.TaskQueue = "test"
	})
	ctx := context.Background()
	q := db.New(s.pool)
	newJob := func(groupKey string, req export.Request, complete bool) uuid.UUID {
		params, err := json.Marshal(req)
		require.NoError(t, err)
		job, err := q.BulkExportJobInsert(ctx, db.BulkExportJobInsertParams{
			TenantID: apiTenantA, Level: db.BulkExportLevel(req.Level), GroupKey: groupKey,
			RequestURL: apiBaseURL + "/fhir/$export", Parameters: params, TransactionTime: time.Now().UTC(),
			WorkflowID: "BulkExport:" + groupKey, RequestedBy: "kickoff-client",
		})
		require.NoError(t, err)
		if complete {
			_, err = q.BulkExportJobStart(ctx, job.ID)
			require.NoError(t, err)
			_, err = q.BulkExportFileInsert(ctx, db.BulkExportFileInsertParams{TenantID: apiTenantA, JobID: job.ID,
				Kind: "output", ResourceType: "Patient", BlobKey: job.ID.String() + "/Patient.ndjson", Count: 1, SizeBytes: 10})
			require.NoError(t, err)
			exp := time.Now().Add(time.Hour)
			_, err = q.BulkExportJobComplete(ctx, db.BulkExportJobCompleteParams{ID: job.ID, ExpiresAt: &exp, Progress: "done"})
			require.NoError(t, err)
		}
		return job.ID
	}
	status := func(id uuid.UUID, tok string) int {
		rec := s.get("/fhir/$export-status/"+id.String(), tok)
		if rec.Code == http.StatusForbidden {
			requireAPIOutcome(t, rec, http.StatusForbidden, "forbidden")
			require.NotContains(t, rec.Body.String(), "$export-file", "no signed URL in a refusal")
		}
		return rec.Code
	}
	cancel := func(id uuid.UUID, tok string) int {
		return s.do(apiRequest{method: http.MethodDelete, path: "/fhir/$export-status/" + id.String(), token: tok}).Code
	}

	patients := newJob("$system", export.Request{Level: export.LevelSystem, Types: []string{"Patient"}, OutputFormat: "application/fhir+ndjson"}, true)
	noFHIR := s.token(apiTenantA, "interop/admin")
	obsOnly := s.token(apiTenantA, "system/Observation.rs")
	patientRead := s.token(apiTenantA, "system/Patient.r")
	for _, tok := range []string{noFHIR, obsOnly, s.token(apiTenantA, "system/Patient.cud")} {
		require.Equal(t, http.StatusForbidden, status(patients, tok))
		require.Equal(t, http.StatusForbidden, cancel(patients, tok))
	}
	require.Equal(t, 0, temporal.cancels, "no refused cancel reached the workflow")
	require.Equal(t, http.StatusNotFound, status(patients, s.token(apiTenantB, "system/*.rs")), "another tenant's job")
	require.Equal(t, http.StatusNotFound, cancel(patients, s.token(apiTenantB, "system/*.rs")))
	rec := s.get("/fhir/$export-status/"+patients.String(), patientRead)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	require.Contains(t, rec.Body.String(), "$export-file")

	// An export of every type needs a scope reading every type, as its kick-off did.
	all := newJob("$patient", export.Request{Level: export.LevelPatient, OutputFormat: "application/fhir+ndjson"}, false)
	require.Equal(t, http.StatusForbidden, status(all, patientRead))
	require.Equal(t, http.StatusForbidden, cancel(all, patientRead))
	require.Equal(t, http.StatusAccepted, status(all, s.token(apiTenantA, "system/*.rs")))

	// A group-level export also needed read on Group.
	group := newJob("g1", export.Request{Level: export.LevelGroup, GroupID: "g1", Types: []string{"Patient"}, OutputFormat: "application/fhir+ndjson"}, false)
	require.Equal(t, http.StatusForbidden, status(group, patientRead))
	require.Equal(t, http.StatusAccepted, status(group, s.token(apiTenantA, "system/Patient.r system/Group.r")))

	require.Equal(t, http.StatusAccepted, cancel(patients, patientRead))
	require.Equal(t, 1, temporal.cancels)
	require.Equal(t, http.StatusNotFound, status(patients, patientRead), "cancelled")
}
