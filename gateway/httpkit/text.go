package httpkit

import (
	"bytes"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/nhp/interop/internal/fhir"
	"github.com/nhp/interop/internal/jsontext"
)

// CheckText refuses with 400 (invalid) what PostgreSQL could not store, before a handler or
// an owner sees it: JSON (any JSON media type, or none) or form request bodies that are not
// UTF-8, hold NUL, or (JSON) a lone UTF-16 surrogate escape. The answer names the problem and
// where it is. (Query strings are ValidQuery's, on every route.) Register it after
// authentication, so that only a known caller's body is read; it reads the body within
// BodyLimit and hands the handler a copy.
func CheckText(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		req := c.Request()
		if req.Body == nil || req.Body == http.NoBody {
			return next(c)
		}
		mt, _, _ := mime.ParseMediaType(req.Header.Get(echo.HeaderContentType))
		mt = strings.ToLower(mt)
		isJSON := mt == "" || mt == "application/json" || strings.HasSuffix(mt, "+json") || mt == "application/json+fhir"
		isForm := mt == echo.MIMEApplicationForm
		if !isJSON && !isForm {
			return next(c) // the handler refuses media types it does not take
		}
		body, err := io.ReadAll(req.Body)
		if err != nil {
			if IsBodyTooLarge(err) {
				return NewOutcome(http.StatusRequestEntityTooLarge, fhir.IssueTooLong, "request body too large")
			}
			return NewOutcome(http.StatusBadRequest, fhir.IssueInvalid, "unreadable request body")
		}
		req.Body = io.NopCloser(bytes.NewReader(body))
		if isForm {
			if err := checkQuery("form parameter", string(body)); err != nil {
				return err
			}
			return next(c)
		}
		if err := jsontext.Check(body); err != nil {
			return textError("request body", err)
		}
		return next(c)
	}
}

// checkQuery checks the names and values of a form body (what url.ParseQuery can read of
// it: a malformed form is its handler's to refuse).
func checkQuery(what, raw string) error {
	if raw == "" {
		return nil
	}
	values, _ := url.ParseQuery(raw)
	for k, vs := range values {
		if err := jsontext.CheckString(k); err != nil {
			return textError("a "+what+" name", err)
		}
		for _, v := range vs {
			if err := jsontext.CheckString(v); err != nil {
				return textError(what+" "+strconv.Quote(k), err)
			}
		}
	}
	return nil
}

// textError is the 400 of a jsontext problem in what.
func textError(what string, err error) error {
	var te *jsontext.Error
	if errors.As(err, &te) {
		return NewOutcome(http.StatusBadRequest, fhir.IssueInvalid, what+": "+te.Problem+" (at byte "+strconv.Itoa(te.Offset)+")")
	}
	return NewOutcome(http.StatusBadRequest, fhir.IssueInvalid, what+": text that cannot be stored")
}
