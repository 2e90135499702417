// Package mapping turns parsed HL7 v2 messages into FHIR R4 transaction Bundles. It is pure:
// the same message always gives the same Bundle (fullUrls are name-based UUIDs), so the Map
// step can be retried and replayed. Every entry is a conditional create keyed on a business
// identifier, so re-processing a message converges on the same resources.
package mapping

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/google/uuid"

	"github.com/nhp/interop/internal/fhir"
	"github.com/nhp/interop/internal/hl7v2"
)

// ErrUnmappable is wrapped by every error about a message this package cannot map; such a
// message will never map and is dead-lettered rather than retried.
var ErrUnmappable = errors.New("unmappable message")

// US Core 6.1 profile URLs of the resources mapped here.
const (
	ProfileUSCorePatient = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient"
)

// urnNamespace seeds the name-based UUIDs of a Bundle's fullUrls.
var urnNamespace = uuid.MustParse("0f2b8d0e-5b53-4d7e-9d44-6f3a1c0b7a21")

// Map returns the FHIR transaction Bundle for m.
func Map(m *hl7v2.Message) (*fhir.Bundle, error) {
	b := &builder{msg: m, controlID: m.ControlID(), eventTime: eventTime(m)}
	if _, ok := m.Lookup("PID-3"); !ok {
		return nil, fmt.Errorf("%w: %s has no PID-3 patient identifier", ErrUnmappable, m.Type())
	}
	if err := b.patient(); err != nil {
		return nil, err
	}
	return &fhir.Bundle{ResourceType: "Bundle", Type: fhir.BundleTransaction, Entry: b.entries}, nil
}

type builder struct {
	msg       *hl7v2.Message
	controlID string
	// eventTime is when the source event happened (EVN-2, else MSH-7); zero when unknown.
	eventTime time.Time
	entries   []fhir.BundleEntry
}

// eventTime reads EVN-2 (recorded date/time), else MSH-7. Updates carry it so that the owner
// keeps the state of the newest event whatever order messages are processed in.
func eventTime(m *hl7v2.Message) time.Time {
	for _, path := range []string{"EVN-2.1", "MSH-7.1"} {
		if v := m.Get(path); v != "" {
			if t, _, err := hl7v2.ParseTime(v); err == nil {
				return t
			}
		}
	}
	return time.Time{}
}

// meta returns the meta of a mapped resource: its profiles and the source event time.
func (b *builder) meta(profiles ...string) fhir.Meta {
	m := fhir.Meta{Profile: profiles}
	if !b.eventTime.IsZero() {
		m.Extension = []fhir.Extension{fhir.SourceEventTimeExtension(b.eventTime)}
	}
	return m
}

// addUpdate appends a conditional update of resource keyed on ident (PUT Type?identifier=…):
// the owner creates it or replaces it, unless it holds state from a newer event.
func (b *builder) addUpdate(resourceType string, resource any, ident fhir.Identifier) error {
	body, err := json.Marshal(resource)
	if err != nil {
		return fmt.Errorf("marshal %s: %w", resourceType, err)
	}
	b.entries = append(b.entries, fhir.BundleEntry{
		FullURL:  b.fullURL(resourceType, ident),
		Resource: body,
		Request: &fhir.EntryRequest{
			Method: "PUT",
			URL:    resourceType + "?identifier=" + url.QueryEscape(ident.Token()),
		},
	})
	return nil
}

func (b *builder) fullURL(resourceType string, ident fhir.Identifier) string {
	return "urn:uuid:" + uuid.NewSHA1(urnNamespace, []byte(b.controlID+"\x00"+resourceType+"\x00"+ident.Token())).String()
}
