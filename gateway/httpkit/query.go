package httpkit

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"github.com/nhp/interop/internal/fhir"
)

// ValidQuery refuses a request whose query string cannot be read exactly: a bad
// percent-escape, invalid UTF-8 or a NUL once decoded. echo (like net/url) drops a pair it
// cannot decode and keeps the rest, so `Patient?name=%zz` would otherwise be a search with no
// criterion — every Patient — rather than the error it is.
func ValidQuery(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		raw := c.Request().URL.RawQuery
		if raw == "" {
			return next(c)
		}
		values, err := url.ParseQuery(raw)
		if err != nil {
			return NewOutcome(http.StatusBadRequest, fhir.IssueInvalid, "the query string is not valid: "+queryError(err))
		}
		for k, vs := range values {
			if !cleanText(k) {
				return NewOutcome(http.StatusBadRequest, fhir.IssueInvalid, "a query parameter name is not valid UTF-8 text")
			}
			for _, v := range vs {
				if !cleanText(v) {
					return NewOutcome(http.StatusBadRequest, fhir.IssueInvalid, "the value of query parameter "+k+" is not valid UTF-8 text")
				}
			}
		}
		return next(c)
	}
}

// cleanText reports whether s is valid UTF-8 without NUL, which no search value or stored
// text may hold (PostgreSQL text refuses it).
func cleanText(s string) bool { return utf8.ValidString(s) && !strings.ContainsRune(s, 0) }

// queryError names what net/url found without echoing the whole query back.
func queryError(err error) string {
	var e url.EscapeError
	if errors.As(err, &e) {
		return "invalid escape " + strconv.Quote(string(e))
	}
	return err.Error()
}
