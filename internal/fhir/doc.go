// Package fhir holds the small set of FHIR R4 shapes the service builds and reads itself:
// OperationOutcome, Bundle, Identifier and a few resource helpers. Resources are otherwise
// kept as JSON, so that no element a sender or owner included is ever dropped by a Go struct.
package fhir

// MediaType is the FHIR JSON media type of every response body.
const MediaType = "application/fhir+json"

// NDJSONMediaType is the media type of Bulk Data export files: one resource per line.
const NDJSONMediaType = "application/fhir+ndjson"
