// Package httpkit is what the gateway's HTTP rooms (fhirapi, adminapi) share: errors answered
// as OperationOutcomes, the bearer-token principal and scope checks, request body limits, the
// FHIR _format check, request logging and HTTP metrics, and the echo server they all run on.
package httpkit

import (
	"errors"
	"log/slog"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/nhp/interop/db"
	"github.com/nhp/interop/internal/fhir"
)

// OutcomeError is an error with the HTTP status and OperationOutcome it must be answered with.
// Its message is shown to the client: it never carries an internal error's text.
type OutcomeError struct {
	Status  int
	Code    fhir.IssueType
	Message string
}

func (e *OutcomeError) Error() string { return e.Message }

// NewOutcome is the error ErrorHandler answers with status and an OperationOutcome of code
// and message.
func NewOutcome(status int, code fhir.IssueType, message string) error {
	return &OutcomeError{Status: status, Code: code, Message: message}
}

// ErrorHandler renders every error as an OperationOutcome (JSON for /admin too, which speaks
// the same shape), never an HTML page and never the text of an internal error.
func ErrorHandler(logger *slog.Logger) echo.HTTPErrorHandler {
	return func(err error, c echo.Context) {
		if c.Response().Committed {
			return
		}
		status, code, msg := http.StatusInternalServerError, fhir.IssueException, "internal error; the request id in X-Request-Id identifies it in the logs"
		var oe *OutcomeError
		var he *echo.HTTPError
		switch {
		case errors.As(err, &oe):
			status, code, msg = oe.Status, oe.Code, oe.Message
		case errors.Is(err, db.ErrInvalidData):
			// The database refused the request's data itself (CheckText stops what it can
			// tell beforehand): the same request fails the same way.
			status, code, msg = http.StatusBadRequest, fhir.IssueInvalid, "the request holds data that cannot be stored (text that is not UTF-8, NUL, or a malformed value)"
		case errors.As(err, &he):
			status = he.Code
			code = IssueForStatus(status)
			msg = http.StatusText(status)
			if s, ok := he.Message.(string); ok && status < 500 {
				msg = s
			}
		}
		if status >= 500 {
			logger.Error("request failed", "method", c.Request().Method, "path", c.Path(), "status", status,
				"request_id", c.Response().Header().Get(echo.HeaderXRequestID), "error", err)
		}
		severity := fhir.SeverityError
		if status >= 500 {
			severity = fhir.SeverityFatal
		}
		if c.Request().Method == http.MethodHead {
			_ = c.NoContent(status)
			return
		}
		c.Response().Header().Set(echo.HeaderContentType, fhir.MediaType+"; charset=utf-8")
		_ = c.JSON(status, fhir.NewOutcome(severity, code, msg))
	}
}

// IssueForStatus is the OperationOutcome issue type of an HTTP error status.
func IssueForStatus(status int) fhir.IssueType {
	switch status {
	case http.StatusBadRequest:
		return fhir.IssueInvalid
	case http.StatusUnauthorized:
		return fhir.IssueLogin
	case http.StatusForbidden:
		return fhir.IssueForbidden
	case http.StatusNotFound:
		return fhir.IssueNotFound
	case http.StatusMethodNotAllowed, http.StatusNotImplemented:
		return fhir.IssueNotSupported
	case http.StatusConflict, http.StatusPreconditionFailed:
		return fhir.IssueConflict
	case http.StatusRequestEntityTooLarge:
		return fhir.IssueTooLong
	case http.StatusTooManyRequests:
		return fhir.IssueThrottled
	case http.StatusGatewayTimeout:
		return fhir.IssueTimeout
	case http.StatusBadGateway, http.StatusServiceUnavailable:
		return fhir.IssueTransient
	}
	return fhir.IssueProcessing
}
