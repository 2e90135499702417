package gateway

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/nhp/interop/internal/auth"
	"github.com/nhp/interop/internal/blobstore"
)

// badRequest is one hostile or careless HTTP request, sent as raw bytes on a real socket so
// that what no client library would send (a bad percent-escape, invalid UTF-8 in a path, a
// body over the limit) reaches the server as written.
type badRequest struct {
	name   string
	method string
	target string // request-target as written on the request line
	header map[string]string
	body   string
	// token: "" sends the read-write-admin token; "-" none; anything else as the bearer.
	token string
}

// protocolLevel are the requests Go's HTTP server refuses before any handler runs (a
// request-target it cannot parse): a plain-text 400 is the most they can get.
var protocolLevel = map[string]bool{"GET bad percent escape": true}

// badHTTPInputs is the corpus the bad-input suite replays: malformed bodies, paths, search
// parameters, headers and tokens, against the FHIR API, $export and the admin API. Every one
// must get a 4xx OperationOutcome: never a 5xx, never a hang.
func badHTTPInputs() []badRequest {
	deep := strings.Repeat(`{"a":`, 5000) + "1" + strings.Repeat("}", 5000)
	var rs []badRequest
	add := func(name, method, target, body string, header map[string]string) {
		rs = append(rs, badRequest{name: name, method: method, target: target, body: body, header: header})
	}
	// Bodies of a create.
	for name, body := range map[string]string{
		"empty":                  ``,
		"not json":               `Patient`,
		"truncated":              `{"resourceType":"Patient","name":[{"family":"X"`,
		"array":                  `[{"resourceType":"Patient"}]`,
		"string":                 `"Patient"`,
		"number":                 `42`,
		"null":                   `null`,
		"no resourceType":        `{"name":[{"family":"X"}]}`,
		"other resourceType":     `{"resourceType":"Observation","status":"final","code":{"text":"x"}}`,
		"unknown resourceType":   `{"resourceType":"Dragon"}`,
		"resourceType not str":   `{"resourceType":7}`,
		"deep nesting":           `{"resourceType":"Patient","extension":[` + deep + `]}`,
		"invalid utf-8":          "{\"resourceType\":\"Patient\",\"name\":[{\"family\":\"\xff\xfe\"}]}",
		"lone surrogate":         `{"resourceType":"Patient","name":[{"family":"\ud800"}]}`,
		"nul escape":             `{"resourceType":"Patient","name":[{"family":"a\u0000b"}]}`,
		"raw nul byte":           "{\"resourceType\":\"Patient\",\"name\":[{\"family\":\"a\x00b\"}]}",
		"huge number":            `{"resourceType":"Patient","multipleBirthInteger":1e400}`,
		"trailing garbage":       `{"resourceType":"Patient"} {"resourceType":"Patient"}`,
		"bad id":                 `{"resourceType":"Patient","id":"../../etc/passwd"}`,
		"control chars in value": "{\"resourceType\":\"Patient\",\"name\":[{\"family\":\"a\x01b\"}]}",
	} {
		add("create body: "+name, http.MethodPost, "/fhir/Patient", body, nil)
	}
	// Bodies of an update, a patch and a Bundle.
	add("update id mismatch", http.MethodPut, "/fhir/Patient/p1", `{"resourceType":"Patient","id":"p2"}`, nil)
	add("update no id in body", http.MethodPut, "/fhir/Patient/p1", `{"resourceType":"Patient"}`, nil)
	add("update bad id in path", http.MethodPut, "/fhir/Patient/has%20space", `{"resourceType":"Patient","id":"has space"}`, nil)
	add("update id too long", http.MethodPut, "/fhir/Patient/"+strings.Repeat("a", 65), `{"resourceType":"Patient","id":"`+strings.Repeat("a", 65)+`"}`, nil)
	add("patch not parameters", http.MethodPatch, "/fhir/Patient/p1", `{"resourceType":"Patient"}`, map[string]string{"Content-Type": "application/fhir+json"})
	add("patch json-patch garbage", http.MethodPatch, "/fhir/Patient/p1", `[{"op":"explode"}]`, map[string]string{"Content-Type": "application/json-patch+json"})
	add("bundle not a bundle", http.MethodPost, "/fhir", `{"resourceType":"Patient"}`, nil)
	add("bundle no type", http.MethodPost, "/fhir", `{"resourceType":"Bundle","entry":[]}`, nil)
	add("bundle searchset posted", http.MethodPost, "/fhir", `{"resourceType":"Bundle","type":"searchset","entry":[]}`, nil)
	add("bundle entry without request", http.MethodPost, "/fhir", `{"resourceType":"Bundle","type":"transaction","entry":[{"resource":{"resourceType":"Patient"}}]}`, nil)
	add("bundle entry bad url", http.MethodPost, "/fhir", `{"resourceType":"Bundle","type":"transaction","entry":[{"request":{"method":"GET","url":"http://evil.example/x"}}]}`, nil)
	add("bundle entry bad method", http.MethodPost, "/fhir", `{"resourceType":"Bundle","type":"transaction","entry":[{"request":{"method":"BREW","url":"Patient"}}]}`, nil)
	add("bundle circular references", http.MethodPost, "/fhir", `{"resourceType":"Bundle","type":"transaction","entry":[
		{"fullUrl":"urn:uuid:a","resource":{"resourceType":"Patient","link":[{"other":{"reference":"urn:uuid:b"},"type":"seealso"}]},"request":{"method":"POST","url":"Patient"}},
		{"fullUrl":"urn:uuid:a","resource":{"resourceType":"Patient"},"request":{"method":"POST","url":"Patient"}}]}`, nil)
	add("bundle invalid utf-8", http.MethodPost, "/fhir", "{\"resourceType\":\"Bundle\",\"type\":\"batch\",\"entry\":[{\"resource\":{\"resourceType\":\"Patient\",\"name\":[{\"family\":\"\xc3\x28\"}]},\"request\":{\"method\":\"POST\",\"url\":\"Patient\"}}]}", nil)
	add("body over the limit", http.MethodPost, "/fhir/Patient", `{"resourceType":"Patient","text":"`+strings.Repeat("x", 17<<20)+`"}`, nil)
	add("xml body", http.MethodPost, "/fhir/Patient", `<Patient xmlns="http://hl7.org/fhir"/>`, map[string]string{"Content-Type": "application/fhir+xml"})
	add("text body", http.MethodPost, "/fhir/Patient", `hello`, map[string]string{"Content-Type": "text/plain"})

	// Paths and search parameters.
	for name, target := range map[string]string{ //nolint:gosec // G101: request targets of the corpus ("token", "cursor" in their names), no credentials
		"unknown type":             "/fhir/Dragon",
		"unknown type read":        "/fhir/Dragon/1",
		"lower-case type":          "/fhir/patient",
		"bad percent escape":       "/fhir/Patient/%zz",
		"nul in path":              "/fhir/Patient/%00",
		"invalid utf-8 in path":    "/fhir/Patient/%ff%fe",
		"dot-dot":                  "/fhir/../admin/messages",
		"id too long":              "/fhir/Patient/" + strings.Repeat("a", 5000),
		"count negative":           "/fhir/Patient?_count=-1",
		"count text":               "/fhir/Patient?_count=abc",
		"count overflow":           "/fhir/Patient?_count=99999999999999999999999",
		"unknown parameter":        "/fhir/Patient?colour=blue",
		"bad date":                 "/fhir/Patient?birthdate=2024-13-45",
		"bad date prefix":          "/fhir/Patient?birthdate=xx2024",
		"bad lastUpdated":          "/fhir/Patient?_lastUpdated=gt-infinity",
		"bad token":                "/fhir/Patient?identifier=|||",
		"bad sort":                 "/fhir/Patient?_sort=-,-",
		"bad include":              "/fhir/Observation?_include=*:*:*",
		"bad summary":              "/fhir/Patient?_summary=bogus",
		"bad format":               "/fhir/Patient?_format=xml",
		"bad page cursor":          "/fhir/Patient?_cursor=not-a-cursor",
		"bad query escape":         "/fhir/Patient?name=%zz",
		"invalid utf-8 in query":   "/fhir/Patient?name=%ff%fe",
		"nul in query":             "/fhir/Patient?name=a%00b",
		"history bad since":        "/fhir/Patient/_history?_since=yesterday",
		"vread bad version":        "/fhir/Patient/p1/_history/abc",
		"export bad type":          "/fhir/$export?_type=Dragon",
		"export bad since":         "/fhir/$export?_since=yesterday",
		"export bad outputFormat":  "/fhir/$export?_outputFormat=text/csv",
		"export bad typeFilter":    "/fhir/$export?_type=Patient&_typeFilter=Observation%3Fstatus%3Dfinal",
		"export status unknown id": "/fhir/$export-status/not-a-uuid",
		"admin bad message id":     "/admin/messages/not-a-uuid",
		"admin bad cursor":         "/admin/messages?cursor=%%%",
		"admin bad status filter":  "/admin/messages?status=exploded",
		"admin bad limit":          "/admin/messages?limit=-5",
		"admin events bad cursor":  "/admin/events?after=zzz",
	} {
		add("GET "+name, http.MethodGet, target, "", map[string]string{"Prefer": "respond-async"})
	}
	// Admin bodies.
	for name, body := range map[string]string{
		"connector not json":        `{`,
		"connector unknown field":   `{"name":"x","protocol":"mllp","direction":"inbound","colour":"blue"}`,
		"connector bad port":        `{"name":"x","protocol":"mllp","direction":"inbound","listenPort":70000}`,
		"connector bad settings":    `{"name":"x","protocol":"mllp","direction":"inbound","settings":{"maxConnections":"many"}}`,
		"connector invalid utf-8":   "{\"name\":\"\xff\",\"protocol\":\"mllp\",\"direction\":\"inbound\"}",
		"connector lone surrogate":  `{"name":"\ud800","protocol":"mllp","direction":"inbound"}`,
		"connector nul in name":     `{"name":"a\u0000b","protocol":"mllp","direction":"inbound"}`,
		"routing rule bad type":     `{"resourceType":"Dragon","ownerUrl":"https://owner.example/fhir"}`,
		"routing rule bad url":      `{"resourceType":"Observation","ownerUrl":"not a url"}`,
		"routing rule ftp url":      `{"resourceType":"Observation","ownerUrl":"ftp://owner.example/fhir"}`,
		"routing rule invalid utf8": "{\"resourceType\":\"Observation\",\"ownerUrl\":\"https://owner.example/\xff\"}",
	} {
		path := "/admin/connectors"
		if strings.HasPrefix(name, "routing") {
			path = "/admin/routing-rules"
		}
		add("POST "+name, http.MethodPost, path, body, map[string]string{"Content-Type": "application/json"})
	}
	// Headers and tokens.
	add("If-Match garbage", http.MethodPut, "/fhir/Patient/p1", `{"resourceType":"Patient","id":"p1"}`, map[string]string{"If-Match": `W/"not-a-number`})
	add("If-None-Exist garbage", http.MethodPost, "/fhir/Patient", `{"resourceType":"Patient"}`, map[string]string{"If-None-Exist": "%zz=&&"})
	add("Accept xml only", http.MethodGet, "/fhir/Patient", "", map[string]string{"Accept": "application/fhir+xml"})
	rs = append(rs,
		badRequest{name: "no token", method: http.MethodGet, target: "/fhir/Patient", token: "-"},
		badRequest{name: "garbage token", method: http.MethodGet, target: "/fhir/Patient", token: "garbage"},
		badRequest{name: "token of dots", method: http.MethodGet, target: "/fhir/Patient", token: "..."},
		badRequest{name: "huge token", method: http.MethodGet, target: "/fhir/Patient", token: strings.Repeat("A", 6000)},
		badRequest{name: "admin without admin scope", method: http.MethodGet, target: "/admin/messages", token: "fhir-only"},
		badRequest{name: "method not allowed", method: "BREW", target: "/fhir/Patient"},
		badRequest{name: "TRACE", method: http.MethodTrace, target: "/fhir/Patient"},
	)
	return rs
}

// TestBadInputsHTTP replays the corpus on a real socket against every room composed, and
// requires a 4xx OperationOutcome for each; afterwards the service still serves.
func TestBadInputsHTTP(t *testing.T) {
	t.Parallel()
	bucket, err := blobstore.Open(context.Background(), "", t.TempDir())
	require.NoError(t, err)
	t.Cleanup(func() { _ = bucket.Close() })
	s := newAPIServer(t, func(d *Deps) { d.Exports.Bucket = bucket })
	srv := httptest.NewServer(s.e)
	t.Cleanup(srv.Close)
	admin := s.token(apiTenantA, apiRWScope+" system/*.rs "+auth.AdminScope)
	fhirOnly := s.token(apiTenantA, apiRWScope)

	for _, r := range badHTTPInputs() {
		t.Run(r.name, func(t *testing.T) {
			token := admin
			switch r.token {
			case "":
			case "-":
				token = ""
			case "fhir-only":
				token = fhirOnly
			default:
				token = r.token
			}
			status, header, body := rawHTTP(t, srv.Listener.Addr().String(), r, token)
			require.Less(t, status, 500, "a bad input must never be a server error: %s", truncate(body, 300))
			require.GreaterOrEqual(t, status, 400, "a bad input must be refused: %s", truncate(body, 300))
			if protocolLevel[r.name] {
				return
			}
			require.Contains(t, header.Get("Content-Type"), "json", "answered with an OperationOutcome, not an HTML page")
			var oo struct {
				ResourceType string `json:"resourceType"`
				Issue        []struct {
					Severity, Code, Diagnostics string
				} `json:"issue"`
			}
			require.NoError(t, json.Unmarshal([]byte(body), &oo), truncate(body, 300))
			require.Equal(t, "OperationOutcome", oo.ResourceType, truncate(body, 300))
			require.NotEmpty(t, oo.Issue)
			require.NotEmpty(t, oo.Issue[0].Diagnostics, "the refusal says why")
		})
	}

	// Still serving: health, a read and a write.
	rec := s.get("/healthz", "")
	require.Equal(t, http.StatusOK, rec.Code)
	status, _, body := rawHTTP(t, srv.Listener.Addr().String(), badRequest{method: http.MethodPost, target: "/fhir/Patient",
		body: apiPatient(apiMRN, "still-serving")}, admin)
	require.Equal(t, http.StatusCreated, status, body)
}

// rawHTTP writes r as an HTTP/1.1 request on a new connection and reads the answer.
func rawHTTP(t *testing.T, addr string, r badRequest, token string) (int, http.Header, string) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	require.NoError(t, err)
	defer func() { _ = conn.Close() }()
	require.NoError(t, conn.SetDeadline(time.Now().Add(30*time.Second)))
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: example.test\r\nConnection: close\r\n", r.method, r.target)
	if token != "" {
		fmt.Fprintf(&b, "Authorization: Bearer %s\r\n", token)
	}
	hasType := false
	for k, v := range r.header {
		fmt.Fprintf(&b, "%s: %s\r\n", k, v)
		hasType = hasType || strings.EqualFold(k, "Content-Type")
	}
	if r.body != "" || r.method == http.MethodPost || r.method == http.MethodPut || r.method == http.MethodPatch {
		if !hasType {
			b.WriteString("Content-Type: application/fhir+json\r\n")
		}
		fmt.Fprintf(&b, "Content-Length: %d\r\n", len(r.body))
	}
	b.WriteString("\r\n")
	b.WriteString(r.body)
	// The server may answer (413) and close before it has read a body over the limit.
	_, _ = conn.Write([]byte(b.String()))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(t, err, "the server answers every request")
	defer func() { _ = resp.Body.Close() }()
	var body strings.Builder
	buf := make([]byte, 32<<10)
	for {
		n, err := resp.Body.Read(buf)
		body.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return resp.StatusCode, resp.Header, body.String()
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
