package fhirserver

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/nhp/interop/db"
	"github.com/nhp/interop/internal/fhir"
)

// Data the database refuses (db.ErrInvalidData) is the request's fault: 400, not a 500 that
// the gateway would turn into a 502.
func TestClassifyInvalidData(t *testing.T) {
	t.Parallel()
	status, code, msg, internal := classify(fmt.Errorf("upsert: %w", db.ErrInvalidData))
	require.Equal(t, http.StatusBadRequest, status)
	require.Equal(t, fhir.IssueInvalid, code)
	require.NotContains(t, msg, "SQLSTATE")
	require.False(t, internal)
}
