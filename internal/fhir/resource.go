package fhir

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// Identifier is a FHIR Identifier's system and value: the business key of conditional writes.
type Identifier struct {
	System string `json:"system,omitempty"`
	Value  string `json:"value"`
}

// Token renders the identifier as a search token, "system|value".
func (i Identifier) Token() string {
	return i.System + "|" + i.Value
}

// ParseToken parses a token search value: "system|value", "|value" (no system) or "value"
// (any system). anySystem reports the last form.
func ParseToken(s string) (id Identifier, anySystem bool) {
	system, value, found := strings.Cut(s, "|")
	if !found {
		return Identifier{Value: s}, true
	}
	return Identifier{System: system, Value: value}, false
}

var (
	resourceTypeRE = regexp.MustCompile(`^[A-Z][A-Za-z]{1,63}$`)
	idRE           = regexp.MustCompile(`^[A-Za-z0-9.-]{1,64}$`)
)

// ErrInvalidResource is wrapped by every error about a resource's basic shape.
var ErrInvalidResource = errors.New("invalid resource")

// ValidType reports whether s has the shape of a FHIR resource type name.
func ValidType(s string) bool { return resourceTypeRE.MatchString(s) }

// ValidID reports whether s is a valid FHIR logical id.
func ValidID(s string) bool { return idRE.MatchString(s) }

// Head is the part of any resource the service routes and stores by.
type Head struct {
	ResourceType string `json:"resourceType"`
	ID           string `json:"id,omitempty"`
}

// ReadHead decodes resourceType and id from a resource and checks their shape.
func ReadHead(raw []byte) (Head, error) {
	var h Head
	if err := json.Unmarshal(raw, &h); err != nil {
		return Head{}, fmt.Errorf("%w: not a JSON object: %v", ErrInvalidResource, err)
	}
	if !ValidType(h.ResourceType) {
		return Head{}, fmt.Errorf("%w: resourceType %q", ErrInvalidResource, h.ResourceType)
	}
	if h.ID != "" && !ValidID(h.ID) {
		return Head{}, fmt.Errorf("%w: id %q", ErrInvalidResource, h.ID)
	}
	return h, nil
}
