package store_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/nhp/interop/internal/dbtest"
	"github.com/nhp/interop/internal/fhir"
	"github.com/nhp/interop/internal/store"
)

// "|value" means an identifier without a system (FHIR token search), not "any system": two
// assigning authorities that reuse one bare number must never converge on one Patient.
func TestIdentifierWithoutSystemIsNotAnySystem(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, pool := dbtest.New(t)
	s := &store.Store{Pool: pool}

	withSystem, err := s.ConditionalCreate(ctx, "t1", []byte(`{"resourceType":"Patient","identifier":[{"system":"urn:oid:1.2.3","value":"42"}]}`),
		fhir.Identifier{System: "urn:oid:1.2.3", Value: "42"})
	require.NoError(t, err)
	bare, err := s.ConditionalCreate(ctx, "t1", []byte(`{"resourceType":"Patient","identifier":[{"value":"42"}]}`),
		fhir.Identifier{Value: "42"})
	require.NoError(t, err)
	require.Equal(t, store.ActionCreated, bare.Action, "the system-less 42 is another patient")
	require.NotEqual(t, withSystem.ID, bare.ID)

	again, err := s.ConditionalCreate(ctx, "t1", []byte(`{"resourceType":"Patient","identifier":[{"value":"42"}]}`),
		fhir.Identifier{Value: "42"})
	require.NoError(t, err)
	require.Equal(t, store.ActionUnchanged, again.Action)
	require.Equal(t, bare.ID, again.ID)

	noSystem, err := s.Search(ctx, "t1", "Patient", store.Query{Identifier: &fhir.Identifier{Value: "42"}})
	require.NoError(t, err)
	require.Equal(t, 1, noSystem.Total)
	require.Equal(t, bare.ID, noSystem.Resources[0].ID)

	anySystem, err := s.Search(ctx, "t1", "Patient", store.Query{Identifier: &fhir.Identifier{Value: "42"}, AnySystem: true})
	require.NoError(t, err)
	require.Equal(t, 2, anySystem.Total)
}
