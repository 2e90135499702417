package fhirapi

import (
	"github.com/labstack/echo/v4"

	"github.com/nhp/interop/gateway/httpkit"
	"github.com/nhp/interop/internal/auth"
	"github.com/nhp/interop/internal/fhir"
)

// The shared HTTP kit under the short names this package's handlers were written with (they
// lived in one package with it before issue #13 split the gateway).

type outcomeError = httpkit.OutcomeError

func newOutcome(status int, code fhir.IssueType, message string) error {
	return httpkit.NewOutcome(status, code, message)
}

func principal(c echo.Context) auth.Principal { return httpkit.Principal(c) }

func requireInteraction(c echo.Context, resourceType string, in auth.Interaction) error {
	return httpkit.RequireInteraction(c, resourceType, in)
}

func isBodyTooLarge(err error) bool { return httpkit.IsBodyTooLarge(err) }

func issueForStatus(status int) fhir.IssueType { return httpkit.IssueForStatus(status) }
